"""The chart renders what its README promises, checked with `helm template` (no cluster)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_manifests import helm

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts/mediaflow"


def template(*args: str, namespace: str = "mediaflow") -> list[dict[str, Any]]:
    result = subprocess.run(
        [helm(), "template", "mediaflow", str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def template_error(*args: str) -> str:
    result = subprocess.run(
        [helm(), "template", "mediaflow", str(CHART), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0, "helm template accepted values it should refuse"
    return result.stderr


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {}
    for d in documents:
        if d["kind"] == "Deployment":
            specs[d["metadata"]["name"]] = d["spec"]["template"]["spec"]
        elif d["kind"] == "Pod":
            specs[d["metadata"]["name"]] = d["spec"]
    return specs


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


def test_every_pod_passes_the_restricted_profile() -> None:
    specs = pod_specs(template())
    assert set(specs) == {
        "mediaflow-operator",
        "mediaflow-api",
        "mediaflow-minio",
        "mediaflow-smoke-test",
    }
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name


def test_operator_watches_the_release_namespace_and_names_the_worker_account() -> None:
    documents = template(namespace="media")
    operator = find(documents, "Deployment", "mediaflow-operator")
    # Two replicas, one leader (leader election): a rolling update is safe.
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--namespace", "media"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert env_of(container)["MEDIAFLOW_WORKER_SERVICE_ACCOUNT"] == "mediaflow-worker"
    worker = find(documents, "ServiceAccount", "mediaflow-worker")
    assert worker["automountServiceAccountToken"] is False


def test_more_namespaces_get_the_operator_role_the_worker_account_and_the_policy() -> None:
    documents = template("--set", "operator.watch.namespaces={team-a,team-b}")
    args = find(documents, "Deployment", "mediaflow-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert [a for i, a in enumerate(args) if i and args[i - 1] == "--namespace"] == [
        "mediaflow",
        "team-a",
        "team-b",
    ]
    for kind in ("Role", "RoleBinding", "ServiceAccount", "NetworkPolicy"):
        namespaces = {d["metadata"]["namespace"] for d in documents if d["kind"] == kind}
        assert {"team-a", "team-b"} <= namespaces, kind


def test_all_namespaces_uses_a_cluster_role_and_each_namespaces_default_account() -> None:
    documents = template("--set", "operator.watch.allNamespaces=true")
    container = find(documents, "Deployment", "mediaflow-operator")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "--namespace" not in container["args"]
    assert env_of(container)["MEDIAFLOW_WORKER_SERVICE_ACCOUNT"] == "default"
    role = find(documents, "ClusterRole", "mediaflow-mediaflow-operator")
    assert {"mediajobs", "jobs", "pods/log"} <= {
        r for rule in role["rules"] for r in rule["resources"]
    }


def test_api_gets_production_settings_and_a_signing_key_from_a_secret() -> None:
    documents = template()
    api = find(documents, "Deployment", "mediaflow-api")["spec"]["template"]["spec"]
    env = env_of(api["containers"][0])
    assert env["MEDIAFLOW_API_HOST"] == "0.0.0.0"  # noqa: S104
    assert env["MEDIAFLOW_API_ENVIRONMENT"] == "production"
    assert env["MEDIAFLOW_API_NAMESPACE"] == "mediaflow"
    assert env["MEDIAFLOW_API_JWT_SIGNING_KEY"] == {
        "secretKeyRef": {"name": "mediaflow-jwt", "key": "signingKey"}
    }
    assert api["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"
    secret = find(documents, "Secret", "mediaflow-jwt")
    assert len(secret["data"]["signingKey"]) >= 64
    given = template("--set", "api.jwt.existingSecret=mine")
    assert not [d for d in given if d["kind"] == "Secret" and d["metadata"]["name"].endswith("jwt")]


def rights_of(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}


def test_api_role_is_least_privilege() -> None:
    documents = template()
    role = find(documents, "Role", "mediaflow-api")
    assert role["metadata"]["namespace"] == "mediaflow"
    # No Secret of the release namespace (JWT key, storage credentials, Helm's release data)
    # but the one of webhook signing secrets, by name, which the operator makes.
    assert rights_of(role) == {
        # patch: deleting one file's job of a batch cancels that input of its MediaJob.
        *(("mediajobs", v) for v in ("create", "get", "list", "patch", "delete")),
        # presets: `preset=` on uploads and GET /api/v1/presets
        ("mediapresets", "get"),
        ("mediapresets", "list"),
        # one Secret by name: the users' webhook signing secrets
        ("secrets", "get"),
        ("secrets", "update"),
    }
    cluster = find(documents, "ClusterRole", "mediaflow-mediaflow-api-presets")
    assert rights_of(cluster) == {("clustermediapresets", "get"), ("clustermediapresets", "list")}
    (secrets,) = [rule for rule in role["rules"] if rule["resources"] == ["secrets"]]
    assert secrets["resourceNames"] == ["mediaflow-webhook-keys"]
    # Users live in a namespace of their own, the API's only other right on Secrets.
    users = find(documents, "Role", "mediaflow-api-users")
    assert users["metadata"]["namespace"] == "mediaflow-users"
    assert rights_of(users) == {("secrets", v) for v in ("create", "get", "update")}
    binding = find(documents, "RoleBinding", "mediaflow-api-users")
    assert binding["metadata"]["namespace"] == "mediaflow-users"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "mediaflow-api", "namespace": "mediaflow"}
    ]
    secret_roles = [
        d
        for d in documents
        if d["kind"] in ("Role", "ClusterRole")
        and any("secrets" in rule["resources"] for rule in d["rules"])
    ]
    # The operator's own Role holds the per-Job URL Secrets (create/get/delete, see
    # test_manifests_chart_operator.py); the API's Secret rights are on users, and on the
    # one Secret of webhook signing secrets by name.
    api_roles = [d for d in secret_roles if d["metadata"]["name"].startswith("mediaflow-api")]
    assert sorted(d["metadata"]["name"] for d in api_roles) == [
        "mediaflow-api",
        "mediaflow-api-users",
    ]


def test_users_namespace_is_made_kept_and_given_to_the_api() -> None:
    documents = template()
    namespace = find(documents, "Namespace", "mediaflow-users")
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    api = find(documents, "Deployment", "mediaflow-api")["spec"]["template"]["spec"]
    assert env_of(api["containers"][0])["MEDIAFLOW_API_USERS_NAMESPACE"] == "mediaflow-users"

    given = template(
        "--set", "api.users.namespace=accounts", "--set", "api.users.createNamespace=false"
    )
    assert not [d for d in given if d["kind"] == "Namespace"]
    assert find(given, "Role", "mediaflow-api-users")["metadata"]["namespace"] == "accounts"
    api = find(given, "Deployment", "mediaflow-api")["spec"]["template"]["spec"]
    assert env_of(api["containers"][0])["MEDIAFLOW_API_USERS_NAMESPACE"] == "accounts"

    # The release namespace itself (the layout before): no Namespace object is made.
    same = template("--set", "api.users.namespace=mediaflow")
    assert not [d for d in same if d["kind"] == "Namespace"]
    assert "longer than 63" in template_error("--namespace", "n" * 60)


def test_auth_values_reach_the_api() -> None:
    documents = template(
        "--set", "api.trustedProxies={10.0.0.0/8,fd00::/8}",
        "--set", "api.passwordHashing.concurrency=3",
        "--set", "api.accountRateLimit.burst=7",
        "--set", "api.jwt.sessionMaxSeconds=86400",
    )  # fmt: skip
    api = find(documents, "Deployment", "mediaflow-api")["spec"]["template"]["spec"]
    env = env_of(api["containers"][0])
    assert json.loads(env["MEDIAFLOW_API_TRUSTED_PROXIES"]) == ["10.0.0.0/8", "fd00::/8"]
    assert env["MEDIAFLOW_API_PASSWORD_HASH_CONCURRENCY"] == "3"  # noqa: S105 - a count
    assert env["MEDIAFLOW_API_PASSWORD_HASH_MEMORY_KIB"] == "65536"  # noqa: S105 - KiB
    assert env["MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST"] == "7"
    assert env["MEDIAFLOW_API_SESSION_MAX_SECONDS"] == "86400"
    assert template(namespace="x")  # defaults render
    default_env = env_of(
        find(template(), "Deployment", "mediaflow-api")["spec"]["template"]["spec"]["containers"][0]
    )
    assert default_env["MEDIAFLOW_API_TRUSTED_PROXIES"] == "[]"
    assert "/api/trustedProxies/0" in template_error(
        "--set", "api.trustedProxies={ingress.example.com}"
    )


def test_job_retention_reaches_the_api_as_its_setting() -> None:
    """api.jobRetentionSeconds becomes the API's job retention (each API-made MediaJob's
    ttlSecondsAfterFinished); the schema keeps it within what that field accepts."""
    from mediaflow_api.settings import ApiSettings

    def retention(*args: str) -> str:
        deployment = find(template(*args), "Deployment", "mediaflow-api")
        return env_of(deployment["spec"]["template"]["spec"]["containers"][0])[
            ApiSettings.env_name("job_retention_seconds")
        ]

    assert retention() == "604800"  # 7 days
    # 30 days, the maximum: an integer, not Helm's float notation (2.592e+06).
    assert retention("--set", "api.jobRetentionSeconds=2592000") == "2592000"
    settings = ApiSettings.model_validate(
        {"job_retention_seconds": retention("--set", "api.jobRetentionSeconds=3600")}
        | {"s3_endpoint": "http://minio:9000", "s3_access_key": "a", "s3_secret_key": "b"}
    )
    assert settings.job_retention_seconds == 3600
    for bad in ("0", "2592001"):
        assert "api/jobRetentionSeconds" in template_error(
            "--set", f"api.jobRetentionSeconds={bad}"
        )
    assert "api/jobRetentionSeconds" in template_error("--set-string", "api.jobRetentionSeconds=7d")


# The API process after start-up and a warm-up of every endpoint family, measured with
# tests/integration/test_api_auth.py's login waves (VmRSS before the first wave).
API_BASE_MIB = 175
UPLOAD_MIB = 8 + 4  # one part buffer + the bounded chunk queue, per upload in progress


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi|M|G)?", quantity).groups()  # type: ignore[union-attr]
    return (
        float(number)
        * {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20, None: 2**-20}[unit]
    )


def test_the_api_memory_limit_holds_hashing_and_uploads_at_once() -> None:
    """The arithmetic of values.yaml (api.resources): base + concurrent argon2 hashes +
    uploads in progress must fit the default limit, so sign-in floods cannot OOM-kill it."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["api"]
    hashing = values["passwordHashing"]
    need = (
        API_BASE_MIB
        + hashing["concurrency"] * hashing["memoryKiB"] / 1024
        + values["maxConcurrentUploads"] * UPLOAD_MIB
    )
    assert need <= mebibytes(values["resources"]["limits"]["memory"]), need


def test_external_storage_feeds_both_components_and_bundles_no_minio() -> None:
    documents = template(
        "--set",
        "storage.mode=external",
        "--set",
        "storage.external.endpoint=https://s3.example.com",
        "--set",
        "storage.external.existingSecret=s3",
        "--set",
        "storage.publicEndpoint=https://files.example.com",
    )
    assert not [d for d in documents if "minio" in d["metadata"]["name"]]
    for name in ("mediaflow-operator", "mediaflow-api"):
        container = find(documents, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        assert env["MEDIAFLOW_S3_ENDPOINT"] == "https://s3.example.com"
        assert env["MEDIAFLOW_S3_PUBLIC_ENDPOINT"] == "https://files.example.com"
        assert env["MEDIAFLOW_S3_SECRET_KEY"] == {
            "secretKeyRef": {"name": "s3", "key": "secretKey"}
        }


def test_worker_network_policy_never_allows_private_or_metadata_ranges() -> None:
    documents = template("--set", "worker.networkPolicy.podCIDR=10.244.0.0/16")
    policy = find(documents, "NetworkPolicy", "mediaflow-worker")
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "mediaflow-operator"}
    }
    assert policy["spec"]["ingress"] == []
    blocks = [
        p["ipBlock"] for rule in policy["spec"]["egress"] for p in rule["to"] if "ipBlock" in p
    ]
    (internet,) = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "192.0.2.0/24",  # documentation ranges, where some labs number their nodes
        "224.0.0.0/4",
        "240.0.0.0/4",
    } <= set(internet["except"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "unknown=1"], "additional properties 'unknown' not allowed"),
        (["--set", "api.service.tyep=NodePort"], "additional properties 'tyep' not allowed"),
        (["--set", "storage.mode=s3"], "storage/mode"),
        (["--set", "storage.mode=external"], "storage/external/endpoint"),
    ],
)
def test_schema_refuses_unknown_keys_and_bad_values(args: list[str], message: str) -> None:
    assert message in template_error(*args)


def test_every_value_is_documented_in_the_readme() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))

    def leaves(schema: dict[str, Any], prefix: str = "") -> set[str]:
        properties = schema.get("properties")
        if schema.get("type") != "object" or not properties or schema.get("additionalProperties"):
            return {prefix}
        found: set[str] = set()
        for key, sub in properties.items():
            found |= leaves(sub, f"{prefix}.{key}" if prefix else key)
        return found

    schema = json.loads((CHART / "values.schema.json").read_text())
    # A row may document a whole block (e.g. `api.resources`).
    missing = {
        leaf
        for leaf in leaves(schema)
        if not any(leaf == row or leaf.startswith(f"{row}.") for row in documented)
    }
    assert not missing, f"values missing from charts/mediaflow/README.md: {sorted(missing)}"


def test_every_api_variable_the_chart_sets_is_a_setting_of_the_api() -> None:
    """ApiSettings ignores unknown variables, so a misspelt name would silently do nothing."""
    from mediaflow_api.settings import ApiSettings

    known = {ApiSettings.env_name(name) for name in ApiSettings.model_fields}
    documents = template(
        "--set", "api.uploadRateLimitPerMinute.video=3", "--set", "api.maxConcurrentUploads=2"
    )
    api = find(documents, "Deployment", "mediaflow-api")["spec"]["template"]["spec"]
    env = env_of(api["containers"][0])
    assert set(env) <= known, set(env) - known
    assert env["MEDIAFLOW_API_RATE_LIMIT_VIDEO_PER_MINUTE"] == "3"
    assert env["MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS"] == "2"


def test_worker_url_and_verification_values_reach_the_operator_settings() -> None:
    """OperatorSettings ignores unknown variables, so a misspelt name would silently do
    nothing; and a user's `input.url` stays public-only unless the chart says otherwise."""
    from mediaflow_operator.config import LeaderElectionSettings, OperatorSettings

    known = {OperatorSettings.env_name(name) for name in OperatorSettings.model_fields}
    election = LeaderElectionSettings.model_config["env_prefix"]
    known |= {
        field.validation_alias
        if isinstance(field.validation_alias, str)
        else f"{election}{name}".upper()
        for name, field in LeaderElectionSettings.model_fields.items()
    }

    def operator_env(*args: str) -> dict[str, Any]:
        deployment = find(template(*args), "Deployment", "mediaflow-operator")
        return env_of(deployment["spec"]["template"]["spec"]["containers"][0])

    env = operator_env()
    assert {k for k in env if k.startswith("MEDIAFLOW_")} <= known
    assert env["MEDIAFLOW_ALLOW_PRIVATE_URL_INPUTS"] == "false"
    assert env["MEDIAFLOW_WORKER_VERIFY_DECODE"] == "true"
    env = operator_env(
        "--set", "worker.allowPrivateUrlInputs=true", "--set", "worker.verifyDecode=false"
    )
    settings = OperatorSettings.model_validate(
        {
            "allow_private_url_inputs": env["MEDIAFLOW_ALLOW_PRIVATE_URL_INPUTS"],
            "worker_verify_decode": env["MEDIAFLOW_WORKER_VERIFY_DECODE"],
            "s3_endpoint": "http://minio:9000",
            "s3_access_key": "a",
            "s3_secret_key": "b",
        }
    )
    assert settings.allow_private_url_inputs is True
    assert settings.worker_verify_decode is False
    assert "worker/allowPrivateUrlInputs" in template_error(
        "--set-string", "worker.allowPrivateUrlInputs=yes"
    )


def test_worker_placement_values_reach_the_operator_as_its_settings() -> None:
    """worker.nodeSelector/tolerations become the operator's JSON settings, which build_job
    puts on every worker pod; a misspelt toleration field is refused at install."""
    from mediaflow_operator.builders import worker_placement
    from mediaflow_operator.config import OperatorSettings

    def placement(*args: str) -> dict[str, Any]:
        deployment = find(template(*args), "Deployment", "mediaflow-operator")
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        settings = OperatorSettings.model_validate(
            {
                "worker_node_selector": json.loads(env["MEDIAFLOW_WORKER_NODE_SELECTOR"]),
                "worker_tolerations": json.loads(env["MEDIAFLOW_WORKER_TOLERATIONS"]),
                "s3_endpoint": "http://minio:9000",
                "s3_access_key": "a",
                "s3_secret_key": "b",
            }
        )
        return worker_placement(settings)

    assert placement() == {}
    toleration = {"key": "media", "operator": "Exists", "effect": "NoSchedule"}
    assert placement(
        "--set-json", 'worker.nodeSelector={"pool":"media"}',
        "--set-json", f"worker.tolerations=[{json.dumps(toleration)}]",
    ) == {"nodeSelector": {"pool": "media"}, "tolerations": [toleration]}  # fmt: skip
    assert "worker/tolerations/0" in template_error(
        "--set-json", 'worker.tolerations=[{"key":"media","efect":"NoSchedule"}]'
    )


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment; values from Secrets get a stand-in."""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["name"].endswith("SIGNING_KEY"):
            env[item["name"]] = "k" * 64
        else:
            env[item["name"]] = "from-a-secret"
    return env


def test_every_value_the_chart_renders_parses_as_the_components_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Helm prints large numbers in float notation (2592000 as 2.592e+06) unless a template
    casts them: the pod would then crash at start. The defaults must parse as settings."""
    from mediaflow_api.settings import ApiSettings
    from mediaflow_operator.config import OperatorSettings

    documents = template()
    components = (("mediaflow-api", ApiSettings), ("mediaflow-operator", OperatorSettings))
    for name, settings in components:
        spec = find(documents, "Deployment", name)["spec"]["template"]["spec"]
        for key in [k for k in os.environ if k.startswith("MEDIAFLOW_")]:
            monkeypatch.delenv(key)
        for key, value in literal_env(spec["containers"][0]).items():
            monkeypatch.setenv(key, value)
        settings()  # raises on any value that does not parse
