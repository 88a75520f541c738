"""ApiSettings: environment names, defaults, and the values it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mediaflow_api.__main__ import main
from mediaflow_api.settings import DEFAULT_SIGNING_KEY, ApiSettings
from tests.unit.api.conftest import make_settings

GOOD_KEY = "k" * 48


def test_defaults() -> None:
    settings = make_settings()
    assert settings.environment == "development"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.namespace == "mediaflow"
    assert settings.max_upload_bytes == 2 * 1024**3
    assert settings.cors_origins == []
    assert settings.jwt_signing_key.get_secret_value() == DEFAULT_SIGNING_KEY
    assert (settings.s3_bucket, settings.s3_region, settings.s3_public_endpoint) == (
        "mediaflow",
        "us-east-1",
        None,
    )


def test_read_from_the_environment_with_the_operators_s3_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "MEDIAFLOW_API_PORT": "9001",
        "MEDIAFLOW_API_NAMESPACE": "media",
        "MEDIAFLOW_API_CORS_ORIGINS": "https://a.example, http://localhost:3000",
        "MEDIAFLOW_API_MAX_UPLOAD_BYTES": "1024",
        "MEDIAFLOW_API_JWT_ISSUER": "issuer",
        "MEDIAFLOW_S3_ENDPOINT": "http://127.0.0.1:9000",
        "MEDIAFLOW_S3_PUBLIC_ENDPOINT": "https://media.example",
        "MEDIAFLOW_S3_ACCESS_KEY": "access",
        "MEDIAFLOW_S3_SECRET_KEY": "secret",
        "MEDIAFLOW_S3_BUCKET": "bucket",
        "MEDIAFLOW_S3_REGION": "eu-west-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ApiSettings()  # type: ignore[call-arg]
    assert settings.port == 9001
    assert settings.namespace == "media"
    assert settings.cors_origins == ["https://a.example", "http://localhost:3000"]
    assert settings.max_upload_bytes == 1024
    assert settings.jwt_issuer == "issuer"
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.s3_public_endpoint == "https://media.example"
    assert (settings.s3_access_key, settings.s3_secret_key) == ("access", "secret")
    assert (settings.s3_bucket, settings.s3_region) == ("bucket", "eu-west-1")
    assert "secret" not in repr(settings)


def test_cors_origins_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAFLOW_API_CORS_ORIGINS", '["https://a.example"]')
    assert make_settings().cors_origins == ["https://a.example"]


def test_production_refuses_the_default_signing_key() -> None:
    with pytest.raises(ValidationError, match="MEDIAFLOW_API_JWT_SIGNING_KEY"):
        make_settings(environment="production")


def test_production_refuses_a_short_signing_key() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        make_settings(environment="production", jwt_signing_key="short")


def test_production_accepts_a_real_key() -> None:
    settings = make_settings(environment="production", jwt_signing_key=GOOD_KEY)
    assert settings.jwt_signing_key.get_secret_value() == GOOD_KEY


def test_development_accepts_the_default_key() -> None:
    assert make_settings(environment="development").environment == "development"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("environment", "staging"),
        ("port", 0),
        ("port", 70000),
        ("namespace", "Not_A_Namespace"),
        ("cors_origins", "ftp://files.example"),
        ("cors_origins", "https://a.example/path"),
        ("max_upload_bytes", 0),
        ("health_timeout_seconds", 0),
        ("jwt_access_ttl_seconds", 10),
        ("jwt_issuer", ""),
        ("s3_endpoint", "minio:9000"),
        ("s3_public_endpoint", "not a url"),
        ("job_retention_seconds", 0),
        ("job_retention_seconds", 30 * 24 * 3600 + 1),  # over ttlSecondsAfterFinished's maximum
    ],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(**{field: value})
    assert any(field in error["loc"] for error in raised.value.errors())


def test_refresh_tokens_must_outlive_access_tokens() -> None:
    with pytest.raises(ValidationError, match="longer than"):
        make_settings(jwt_access_ttl_seconds=3600, jwt_refresh_ttl_seconds=1800)


def test_main_refuses_bad_settings_without_printing_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIAFLOW_API_ENVIRONMENT", "production")
    monkeypatch.setenv("MEDIAFLOW_API_PORT", "99999")
    monkeypatch.setenv("MEDIAFLOW_S3_SECRET_KEY", "very-secret-value")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "MEDIAFLOW_API_PORT" in err
    assert "MEDIAFLOW_S3_ENDPOINT" in err  # missing
    assert "very-secret-value" not in err


def test_main_refuses_production_with_the_default_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "MEDIAFLOW_API_ENVIRONMENT": "production",
        "MEDIAFLOW_S3_ENDPOINT": "http://127.0.0.1:9",
        "MEDIAFLOW_S3_ACCESS_KEY": "a",
        "MEDIAFLOW_S3_SECRET_KEY": "b",
    }.items():
        monkeypatch.setenv(name, value)
    assert main([]) == 2
    assert "default JWT signing key" in capsys.readouterr().err


def test_result_url_ttl_shares_the_operators_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_settings().result_url_ttl_seconds == 24 * 3600
    monkeypatch.setenv("MEDIAFLOW_RESULT_URL_TTL_SECONDS", "600")
    assert make_settings().result_url_ttl_seconds == 600
    with pytest.raises(ValidationError):
        make_settings(result_url_ttl_seconds=8 * 24 * 3600)


def test_job_retention_is_seven_days_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_settings().job_retention_seconds == 7 * 24 * 3600
    monkeypatch.setenv("MEDIAFLOW_API_JOB_RETENTION_SECONDS", "3")
    assert make_settings().job_retention_seconds == 3
    assert ApiSettings.env_name("job_retention_seconds") == "MEDIAFLOW_API_JOB_RETENTION_SECONDS"


def test_docs_list_every_setting() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs/api.md").read_text()
    missing = [
        ApiSettings.env_name(name)
        for name in ApiSettings.model_fields
        if f"| `{ApiSettings.env_name(name)}` |" not in docs
    ]
    assert missing == []
