"""Issue 10, item 10: the chart's RBAC for the API, used by the API as a real process.

The API runs with a token of a service account bound exactly as the chart binds the
release's (`api-rbac.yaml`, `api-users.yaml`, rendered by `helm template`): every auth flow
works with the users in their own namespace, and the account can touch no Secret of the
API's own namespace (where the JWT key, storage credentials and Helm's data live).
"""

# ruff: noqa: S105 - test passwords and tokens are fixtures, not secrets

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from tests.environment import restricted_namespace
from tests.integration.api_process import ApiProcess
from tests.unit.test_manifests import helm

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
ACCOUNT = "mediaflow-api"  # the chart's name for the API's service account


def run(args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def chart_namespaces(kube: client.ApiClient) -> Iterator[tuple[str, str]]:
    """A release namespace and a users' namespace with the chart's API account and rights."""
    for release in restricted_namespace(kube, "mf-api"):
        for users in restricted_namespace(kube, "mf-users"):
            rendered = run(
                [helm(), "template", "mediaflow", str(REPO / "charts/mediaflow"),
                 "--namespace", release.name,
                 "--set", f"api.users.namespace={users.name}",
                 "--set", "api.users.createNamespace=false",
                 "--show-only", "templates/serviceaccounts.yaml",
                 "--show-only", "templates/api-rbac.yaml",
                 "--show-only", "templates/api-users.yaml"]
            )  # fmt: skip
            documents = [d for d in yaml.safe_load_all(rendered) if d]
            # The ClusterRole and its binding: reading ClusterMediaPresets (issue 15).
            assert {d["kind"] for d in documents} == {
                "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"
            }  # fmt: skip
            cluster_wide = yaml.safe_dump_all(
                [d for d in documents if d["kind"].startswith("Cluster")]
            )
            run(["kubectl", "apply", "-f", "-"], stdin=rendered)
            try:
                yield release.name, users.name
            finally:
                # Cluster-scoped: they do not go with the scratch namespaces.
                run(["kubectl", "delete", "--ignore-not-found", "-f", "-"], stdin=cluster_wide)


def kubeconfig_with_token(path: Path, token: str) -> Path:
    """This environment's cluster, as the service account of `token`."""
    cluster = yaml.safe_load(run(["kubectl", "config", "view", "--minify", "--raw"]))
    cluster["users"] = [{"name": "api", "user": {"token": token}}]
    cluster["contexts"][0]["context"]["user"] = "api"
    path.write_text(yaml.safe_dump(cluster))
    return path


def test_the_api_works_with_the_charts_rights_and_reads_no_other_secret(
    chart_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    release, users = chart_namespaces
    token = run(["kubectl", "-n", release, "create", "token", ACCOUNT, "--duration", "20m"])
    kubeconfig = kubeconfig_with_token(tmp_path / "kubeconfig", token.strip())

    env = {
        "KUBECONFIG": str(kubeconfig),
        "MEDIAFLOW_API_NAMESPACE": release,
        "MEDIAFLOW_API_USERS_NAMESPACE": users,
    }
    with ApiProcess(env) as api, httpx.Client(base_url=f"{api.url}/api/v1", timeout=30) as http:
        email = f"rbac-{uuid.uuid4().hex[:10]}@example.com"
        registered = http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        tokens = http.post("/auth/login", data={"username": email, "password": PASSWORD}).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert http.get("/auth/me", headers=bearer).status_code == 200
        refreshed = http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert http.get("/jobs", headers=bearer).status_code == 200
        assert http.get("/health").status_code == 200
        assert http.post("/auth/logout-all", headers=bearer).status_code == 204

    # The account itself: its users' Secrets yes, any Secret of the release namespace no.
    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    name = f"user-{registered.json()['data']['user']['id'].replace('-', '')}"
    assert core.read_namespaced_secret(name, users).metadata.name == name
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="probe"), string_data={"k": "v"})
    for attempt in (
        lambda: core.list_namespaced_secret(release),
        lambda: core.read_namespaced_secret("mediaflow-jwt", release),
        lambda: core.create_namespaced_secret(release, secret),
        lambda: core.list_namespaced_secret(users),  # not even listing the users
    ):
        with pytest.raises(ApiException) as refused:
            attempt()
        assert refused.value.status == 403


def test_webhook_secrets_with_the_charts_rights(
    kube: client.ApiClient, chart_namespaces: tuple[str, str], tmp_path: Path
) -> None:
    """Issue 15: the API reads and rotates users' webhook signing secrets in the one Secret
    the chart lets it get and update by name; it cannot make that Secret (503 until the
    operator has made it, as the operator does at start: MEDIAFLOW_WEBHOOK_KEYS_SECRET)."""
    release, users = chart_namespaces
    token = run(["kubectl", "-n", release, "create", "token", ACCOUNT, "--duration", "20m"])
    kubeconfig = kubeconfig_with_token(tmp_path / "kubeconfig", token.strip())
    env = {
        "KUBECONFIG": str(kubeconfig),
        "MEDIAFLOW_API_NAMESPACE": release,
        "MEDIAFLOW_API_USERS_NAMESPACE": users,
    }
    with ApiProcess(env) as api, httpx.Client(base_url=f"{api.url}/api/v1", timeout=30) as http:
        email = f"hooks-{uuid.uuid4().hex[:10]}@example.com"
        registered = http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        bearer = {"Authorization": f"Bearer {registered.json()['data']['tokens']['access_token']}"}
        missing = http.get("/webhooks/secret", headers=bearer)
        assert missing.status_code == 503, missing.text
        # What the operator does at start (mediaflow_operator.notifier.make_keys_secret).
        client.CoreV1Api(kube).create_namespaced_secret(
            release,
            client.V1Secret(metadata=client.V1ObjectMeta(name="mediaflow-webhook-keys"), data={}),
        )
        first = http.get("/webhooks/secret", headers=bearer)
        assert first.status_code == 200, first.text
        rotated = http.post("/webhooks/secret/rotate", headers=bearer)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["data"]["previous_secret"] == first.json()["data"]["secret"]
    stored = client.CoreV1Api(kube).read_namespaced_secret("mediaflow-webhook-keys", release)
    assert len(stored.data) == 2  # the user's secrets and when they were rotated
