"""The local environment is real: a node that runs the project image under the restricted
profile, Service DNS inside pods, and MinIO reachable from pods through presigned URLs."""

from __future__ import annotations

import os
import secrets
import textwrap

from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, require_env, unique_name, wait_until

IMAGE = os.environ.get("MEDIAFLOW_IMAGE", "mediaflow.local/mediaflow:dev")


def restricted_container(name: str, command: list[str], **kwargs) -> client.V1Container:
    """A container that passes the `restricted` Pod Security profile."""
    return client.V1Container(
        name=name,
        image=IMAGE,
        image_pull_policy="Never",  # nothing can be pulled here; the image was imported
        command=command,
        security_context=client.V1SecurityContext(
            run_as_non_root=True,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        resources=client.V1ResourceRequirements(
            requests={"cpu": "100m", "memory": "64Mi"}, limits={"cpu": "1", "memory": "256Mi"}
        ),
        **kwargs,
    )


def run_job(ns: ScratchNamespace, name: str, command: list[str], timeout: float = 180) -> str:
    """Run a one-pod Job to completion and return its pod's log; fail with the log otherwise."""
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            active_deadline_seconds=int(timeout),
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    automount_service_account_token=False,
                    containers=[restricted_container("main", command)],
                )
            ),
        ),
    )
    ns.batch.create_namespaced_job(ns.name, job)

    def finished() -> str | None:
        status = ns.batch.read_namespaced_job_status(name, ns.name).status
        for condition in status.conditions or []:
            if condition.type in {"Complete", "Failed"} and condition.status == "True":
                return condition.type
        return None

    outcome = wait_until(f"job {name}", finished, timeout=timeout + 30)
    pods = ns.core.list_namespaced_pod(ns.name, label_selector=f"job-name={name}").items
    assert len(pods) == 1, f"expected one pod for job {name}, got {len(pods)}"
    logs = ns.core.read_namespaced_pod_log(pods[0].metadata.name, ns.name)
    assert outcome == "Complete", f"job {name} ended {outcome}; pod log:\n{logs}"
    return logs


def test_node_is_ready_and_runs_the_pinned_version(kube: client.ApiClient) -> None:
    nodes = client.CoreV1Api(kube).list_node().items
    assert len(nodes) == 1
    node = nodes[0]
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    versions = open("hack/versions.env").read()  # noqa: PTH123, SIM115
    assert f"KUBE_VERSION={node.status.node_info.kubelet_version}\n" in versions


def test_job_runs_the_media_tools_of_the_project_image_as_non_root(
    namespace: ScratchNamespace,
) -> None:
    logs = run_job(
        namespace,
        "tools",
        ["sh", "-c", "ffmpeg -version && cwebp -version && avifenc --version && echo uid=$(id -u)"],
    )
    assert logs.startswith("ffmpeg version "), logs
    assert "libwebp" in logs or any(line.count(".") == 2 for line in logs.splitlines()), logs
    assert "Version: " in logs, logs  # avifenc --version
    uid = next(line for line in logs.splitlines() if line.startswith("uid="))
    assert uid != "uid=0", logs


def test_pod_resolves_a_service_by_dns_name(namespace: ScratchNamespace) -> None:
    ns = namespace
    labels = {"app": "web"}
    token = secrets.token_hex(8)
    # A web server pod serving a file that holds a random token, behind a ClusterIP Service.
    ns.core.create_namespaced_pod(
        ns.name,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="web", labels=labels),
            spec=client.V1PodSpec(
                automount_service_account_token=False,
                containers=[
                    restricted_container(
                        "web",
                        [
                            "sh",
                            "-c",
                            f"mkdir -p /srv/www && echo {token} > /srv/www/token"
                            " && exec python3 -m http.server 8080 --directory /srv/www",
                        ],
                        ports=[client.V1ContainerPort(container_port=8080)],
                        volume_mounts=[client.V1VolumeMount(name="srv", mount_path="/srv")],
                        readiness_probe=client.V1Probe(
                            tcp_socket=client.V1TCPSocketAction(port=8080), period_seconds=1
                        ),
                    )
                ],
                volumes=[client.V1Volume(name="srv", empty_dir=client.V1EmptyDirVolumeSource())],
            ),
        ),
    )
    service = ns.core.create_namespaced_service(
        ns.name,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )
    fqdn = f"web.{ns.name}.svc.cluster.local"
    client_script = textwrap.dedent(f"""
        import socket, time, urllib.request
        for attempt in range(60):
            try:
                body = urllib.request.urlopen("http://web/token", timeout=5).read().decode()
                break
            except OSError as error:
                print("waiting:", error, flush=True)
                time.sleep(1)
        print("short", body.strip())
        print("fqdn", socket.gethostbyname("{fqdn}"))
    """)
    logs = run_job(ns, unique_name("dns"), ["python3", "-c", client_script])
    assert f"short {token}" in logs, logs
    assert f"fqdn {service.spec.cluster_ip}" in logs, logs


def test_pod_puts_an_object_through_a_presigned_url(
    namespace: ScratchNamespace, minio_settings: MinioSettings
) -> None:
    from datetime import timedelta

    key = f"tests/{unique_name('presigned')}.txt"
    body = secrets.token_hex(32)
    # Signed for the endpoint pods use; the pod holds no credentials, only the URL.
    url = minio_settings.client(internal=True).presigned_put_object(
        minio_settings.bucket, key, expires=timedelta(minutes=10)
    )
    script = textwrap.dedent(f"""
        import urllib.request
        request = urllib.request.Request({url!r}, data={body!r}.encode(), method="PUT")
        print("status", urllib.request.urlopen(request, timeout=30).status)
    """)
    host = minio_settings.client()
    try:
        logs = run_job(namespace, "put", ["python3", "-c", script])
        assert "status 200" in logs, logs
        response = host.get_object(minio_settings.bucket, key)
        try:
            assert response.read().decode() == body
        finally:
            response.close()
            response.release_conn()
    finally:
        host.remove_object(minio_settings.bucket, key)


def test_environment_file_points_at_the_running_minio(minio_settings: MinioSettings) -> None:
    assert minio_settings.client().bucket_exists(minio_settings.bucket)
    assert require_env("KUBECONFIG").endswith(".local/kubeconfig")
