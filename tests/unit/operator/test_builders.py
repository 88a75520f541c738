"""The Job built for a MediaJob is hardened as docs/architecture.md (pods hold no credentials)
requires."""

import json
from datetime import timedelta

import pytest

from mediaflow_core import constants as c
from mediaflow_core.constants import URL_DIR
from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.naming import MediaJobRef, job_name, result_key
from mediaflow_operator.builders import (
    SpecError,
    build_job,
    build_url_secret,
    check_input,
    check_name,
    check_namespace,
    namespace_excluded,
    owned_by,
    pod_resources,
    pod_url_ttl,
    url_secret_name,
)
from mediaflow_operator.config import OperatorSettings

SECRET = "s3-secret-key-that-must-not-leak"  # noqa: S105
SETTINGS = OperatorSettings(
    s3_endpoint="http://minio:9000", s3_access_key="access-key-id", s3_secret_key=SECRET
)
REF = MediaJobRef(name="photo", namespace="team-a", uid="0123abcd-4567-89ef-0123-456789abcdef")


def spec(operation: str = "ImageConvert", **extra) -> MediaJobSpec:
    options = {"ImageConvert": {"imageConvert": {"format": "webp"}}}.get(operation, {})
    return MediaJobSpec.model_validate(
        {"input": {"object": {"key": "team-a/in.jpg"}}, "operation": operation, **options, **extra}
    )


def job(s: MediaJobSpec | None = None, input_size: int | None = 1000) -> dict:
    return build_job(REF, s or spec(), SETTINGS, input_size=input_size)


def test_job_name_is_stable_unique_and_short() -> None:
    assert job_name(REF) == job_name(REF) == "photo-0123abcd"
    long = MediaJobRef(name="x" * 253, namespace="n", uid=REF.uid)
    assert len(job_name(long)) <= 63
    other = MediaJobRef(name="photo", namespace="team-a", uid="ffff" + REF.uid[4:])
    assert job_name(other) != job_name(REF)


def test_job_is_owned_labelled_and_fails_fast_on_invalid_input() -> None:
    built = job()
    meta = built["metadata"]
    assert meta["labels"] == {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_MEDIAJOB: "photo"}
    assert meta["ownerReferences"][0]["uid"] == REF.uid
    assert meta["ownerReferences"][0]["controller"] is True
    rules = built["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == [c.EXIT_INVALID_INPUT, c.EXIT_INPUT_NOT_FOUND]
    assert built["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert built["spec"]["activeDeadlineSeconds"] == SETTINGS.image_deadline_seconds
    assert built["spec"]["backoffLimit"] == SETTINGS.backoff_limit


def test_pod_is_restricted_and_holds_no_credentials() -> None:
    pod = job()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert not any("SECRET" in k or "ACCESS_KEY" in k for k in env)
    assert SECRET not in json.dumps(pod)
    assert SETTINGS.s3_access_key not in json.dumps(pod)
    assert json.loads(env["MEDIAFLOW_OPTIONS"]) == {
        "format": "webp",
        "quality": 85,
        "lossless": False,
    }


def test_video_gets_the_heavier_class_and_scratch_space_follows_the_input() -> None:
    video = spec("VideoThumbnail")
    resources = job(video, input_size=10 * 1024**2)["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    assert resources["requests"]["cpu"] == SETTINGS.video_cpu
    assert resources["limits"]["memory"] == SETTINGS.video_memory
    small = int(resources["limits"]["ephemeral-storage"])
    unknown = int(
        job(video, input_size=None)["spec"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]["ephemeral-storage"]
    )
    assert 30 * 1024**2 < small < unknown


def test_resources_beyond_policy_are_refused() -> None:
    with pytest.raises(SpecError, match="over"):
        pod_resources(spec(resources={"cpu": "64"}), SETTINGS)
    assert pod_resources(spec(resources={"cpu": "2", "memory": "1Gi"}), SETTINGS).threads == 2


@pytest.mark.parametrize(
    "key", ["other/in.jpg", "team-a-evil/in.jpg", "team-a/results/x/output", "in.jpg"]
)
def test_inputs_outside_the_namespace_prefix_are_refused(key: str) -> None:
    s = MediaJobSpec.model_validate(
        {
            "input": {"object": {"key": key}},
            "operation": "ImageConvert",
            "imageConvert": {"format": "png"},
        }
    )
    with pytest.raises(SpecError) as error:
        check_input(REF, s, "mediaflow")
    assert error.value.reason == "InputNotAllowed"


def test_results_live_under_the_namespace_and_uid() -> None:
    assert result_key(REF) == f"team-a/results/{REF.uid}/output"


def worker_env_of(s: MediaJobSpec, settings: OperatorSettings = SETTINGS) -> dict[str, str]:
    built = build_job(REF, s, settings, input_size=1000)
    return {
        e["name"]: e["value"] for e in built["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_a_users_url_is_fetched_from_public_addresses_only() -> None:
    url_input = spec(input={"url": "https://media.example/photo.jpg"})
    assert worker_env_of(url_input)["MEDIAFLOW_INPUT_PUBLIC_ONLY"] == "1"
    # The presigned URL of an input object points at the (private) storage endpoint.
    assert worker_env_of(spec())["MEDIAFLOW_INPUT_PUBLIC_ONLY"] == "0"
    allowed = SETTINGS.model_copy(update={"allow_private_url_inputs": True})
    assert worker_env_of(url_input, allowed)["MEDIAFLOW_INPUT_PUBLIC_ONLY"] == "0"


def test_decode_verification_follows_the_setting() -> None:
    assert SETTINGS.worker_verify_decode is True
    assert worker_env_of(spec())["MEDIAFLOW_VERIFY_DECODE"] == "1"
    quick = SETTINGS.model_copy(update={"worker_verify_decode": False})
    assert worker_env_of(spec(), quick)["MEDIAFLOW_VERIFY_DECODE"] == "0"


def test_the_url_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAFLOW_ALLOW_PRIVATE_URL_INPUTS", "true")
    monkeypatch.setenv("MEDIAFLOW_WORKER_VERIFY_DECODE", "false")
    settings = OperatorSettings(
        s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key=SECRET
    )
    assert settings.allow_private_url_inputs is True
    assert settings.worker_verify_decode is False


def test_a_name_too_long_for_a_label_value_is_refused_before_any_job() -> None:
    check_name(MediaJobRef(name="x" * 63, namespace="n", uid=REF.uid))
    with pytest.raises(SpecError) as error:
        check_name(MediaJobRef(name="x" * 64, namespace="n", uid=REF.uid))
    assert error.value.reason == "NameTooLong"
    assert str(error.value) == (
        "metadata.name must be at most 63 characters: it is the value of the label "
        "mediaflow.io/mediajob on the MediaJob's Job and pods"
    )


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease"])
def test_system_namespaces_are_excluded_by_default(namespace: str) -> None:
    excluded = SETTINGS.excluded_namespace_patterns
    assert excluded == ("kube-system", "kube-public", "kube-node-lease")
    with pytest.raises(SpecError) as error:
        check_namespace(MediaJobRef(name="p", namespace=namespace, uid=REF.uid), excluded)
    assert error.value.reason == "NamespaceNotServed"
    assert str(error.value) == (
        f"MediaJobs in namespace {namespace!r} are not run: the operator excludes "
        "kube-system, kube-public, kube-node-lease (MEDIAFLOW_EXCLUDED_NAMESPACES)"
    )


def test_excluded_namespaces_are_globs_and_others_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for namespace in ("default", "team-a", "kube-systems", "mediaflow"):
        check_namespace(MediaJobRef(name="p", namespace=namespace, uid=REF.uid),
                        SETTINGS.excluded_namespace_patterns)  # fmt: skip
    monkeypatch.setenv("MEDIAFLOW_EXCLUDED_NAMESPACES", " kube-*, ops-?? ,")
    patterns = OperatorSettings(
        s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key=SECRET
    ).excluded_namespace_patterns
    assert patterns == ("kube-*", "ops-??")
    assert namespace_excluded("kube-anything", patterns)
    assert namespace_excluded("ops-12", patterns)
    assert not namespace_excluded("ops-123", patterns)
    assert not namespace_excluded("team-a", patterns)


def test_the_urls_reach_the_pod_only_as_files_of_its_own_secret() -> None:
    """Issue 10, item 7: whoever may view Jobs or pods must not read the presigned URLs."""
    built = job()
    pod = built["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert not any("URL" in name and name != "MEDIAFLOW_URL_DIR" for name in env), env
    assert env["MEDIAFLOW_URL_DIR"] == URL_DIR == "/var/run/secrets/mediaflow"
    assert {"name": "urls", "mountPath": URL_DIR, "readOnly": True} in container["volumeMounts"]
    volume = next(v for v in pod["volumes"] if v["name"] == "urls")
    assert volume["secret"] == {"secretName": job_name(REF), "defaultMode": 0o440}
    assert url_secret_name(REF) == job_name(REF)

    created = {**built, "metadata": {**built["metadata"], "uid": "job-uid"}}
    secret = build_url_secret(REF, created, input_url="http://in?sig", output_url="http://out?s")
    assert secret["metadata"]["name"] == volume["secret"]["secretName"]
    assert secret["metadata"]["namespace"] == "team-a"
    assert secret["metadata"]["labels"] == built["metadata"]["labels"]
    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_name(REF),
            "uid": "job-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert secret["stringData"] == {"input-url": "http://in?sig", "output-url": "http://out?s"}
    assert secret["immutable"] is True
    assert owned_by(secret, "job-uid")
    assert not owned_by(secret, REF.uid)


def test_url_lifetime_is_the_jobs_deadline_plus_a_margin() -> None:
    """activeDeadlineSeconds bounds the whole Job, retries included: not deadline x retries."""
    image = pod_resources(spec(), SETTINGS)
    assert job()["spec"]["activeDeadlineSeconds"] == image.deadline_seconds == 300
    assert pod_url_ttl(image.deadline_seconds) == timedelta(seconds=300 + 120)
    video = pod_resources(spec("VideoConvert", videoConvert={"container": "mp4"}), SETTINGS)
    assert pod_url_ttl(video.deadline_seconds) == timedelta(seconds=3600 + 120)


def test_worker_pods_are_placed_by_the_node_selector_and_tolerations_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = job()["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod  # the scheduler alone places them
    assert "tolerations" not in pod
    monkeypatch.setenv("MEDIAFLOW_WORKER_NODE_SELECTOR", '{"pool": "media"}')
    monkeypatch.setenv(
        "MEDIAFLOW_WORKER_TOLERATIONS",
        '[{"key": "media", "operator": "Exists", "effect": "NoSchedule"},'
        ' {"key": "spot", "value": "yes", "effect": "NoExecute", "tolerationSeconds": 30}]',
    )
    settings = OperatorSettings(
        s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key=SECRET
    )
    pod = build_job(REF, spec(), settings, input_size=1000)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "media"}
    assert pod["tolerations"] == [
        {"key": "media", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Equal", "value": "yes", "effect": "NoExecute",
         "tolerationSeconds": 30},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEDIAFLOW_WORKER_NODE_SELECTOR", '["pool=media"]'),
        ("MEDIAFLOW_WORKER_NODE_SELECTOR", "pool=media"),
        ("MEDIAFLOW_WORKER_TOLERATIONS", '[{"key": "media", "effect": "NoSchedul"}]'),
        ("MEDIAFLOW_WORKER_TOLERATIONS", '[{"key": "media", "operater": "Exists"}]'),
    ],
)
def test_malformed_placement_settings_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.removeprefix("MEDIAFLOW_").lower()):
        OperatorSettings(s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key=SECRET)


def test_worker_pods_request_cpu_and_are_limited_only_when_asked() -> None:
    """Default: a CPU request without a limit (idle cores are used; threads follow the CPUs
    the pod may run on); with worker_cpu_limits, limit = request and threads from it. Memory
    and scratch are always limited. The same for warm pods."""
    from mediaflow_operator.builders import build_session_job

    def container(built: dict) -> dict:
        return built["spec"]["template"]["spec"]["containers"][0]

    limited = SETTINGS.model_copy(update={"worker_cpu_limits": True})
    for settings, cpu_limit, threads in ((SETTINGS, None, "auto"), (limited, "1", "1")):
        for built in (
            build_job(REF, spec("VideoThumbnail"), settings, input_size=1000),
            build_session_job("mf-warm-x", "team-a", "", settings),
        ):
            resources = container(built)["resources"]
            assert resources["requests"]["cpu"] in ("1", settings.image_cpu)
            assert resources["limits"].get("cpu") in (
                None if cpu_limit is None else resources["requests"]["cpu"],
            )
            assert resources["limits"]["memory"] == resources["requests"]["memory"]
            assert "ephemeral-storage" in resources["limits"]
            env = {e["name"]: e["value"] for e in container(built)["env"]}
            # Limited: the whole CPUs of the request, at least one (500m and 1 give 1).
            assert env[c.ENV_THREADS] == threads
