"""The Litestar application: `create_app()` builds it from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version

from kubernetes import client as kube
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from minio import Minio

from mediaflow_api.auth.guards import provide_current_user
from mediaflow_api.auth.passwords import PasswordHashing
from mediaflow_api.auth.ratelimit import TokenBucketLimiter, parse_networks
from mediaflow_api.auth.service import AuthService
from mediaflow_api.auth.tokens import TokenCodec
from mediaflow_api.auth.users import UserStore
from mediaflow_api.clients import Clients, open_clients
from mediaflow_api.console import console_router
from mediaflow_api.controllers.auth import AuthController
from mediaflow_api.controllers.health import HealthController
from mediaflow_api.controllers.jobs import JobsController
from mediaflow_api.controllers.presets import PresetsController
from mediaflow_api.controllers.uploads import UPLOAD_HANDLERS
from mediaflow_api.controllers.webhooks import WebhooksController
from mediaflow_api.health import HealthChecks
from mediaflow_api.jobs.service import JobService
from mediaflow_api.metrics import PROMETHEUS, MetricsController
from mediaflow_api.presets.service import PresetService
from mediaflow_api.problems import EXCEPTION_HANDLERS
from mediaflow_api.request_context import REQUEST_ID_HEADER, RequestContextMiddleware, before_send
from mediaflow_api.routing import answer_options
from mediaflow_api.settings import ApiSettings
from mediaflow_api.uploads.forms import RateGroup
from mediaflow_api.uploads.service import UploadService
from mediaflow_api.uploads.slots import UploadSlots
from mediaflow_api.webhooks.keys import WebhookKeys
from mediaflow_core.storage import Storage

API_PREFIX = "/api/v1"
DOCS_PATH = "/docs"  # Swagger UI here, the schema at /docs/openapi.json


def provide_settings(state: State) -> ApiSettings:
    return state.settings


def provide_kube(state: State) -> kube.ApiClient:
    return state.clients.kube


def provide_minio(state: State) -> Minio:
    return state.clients.minio


def provide_health_checks(state: State) -> HealthChecks:
    return state.health_checks


def provide_auth_service(state: State) -> AuthService:
    settings: ApiSettings = state.settings
    return AuthService(
        UserStore(state.clients.kube, settings.user_secrets_namespace),
        state.token_codec,
        state.password_hashing,
        state.account_limiter,
        settings.session_max_seconds,
    )


def provide_job_service(state: State) -> JobService:
    settings: ApiSettings = state.settings
    return JobService(state.clients.kube, settings.namespace, state.storage)


def provide_webhook_keys(state: State) -> WebhookKeys:
    settings: ApiSettings = state.settings
    return WebhookKeys(
        state.clients.kube,
        settings.namespace,
        settings.webhook_keys_name,
        settings.webhook_rotation_grace_seconds,
    )


def provide_upload_service(state: State) -> UploadService:
    clients: Clients = state.clients
    return UploadService(
        state.settings,
        clients.minio,
        clients.s3_http,
        clients.kube,
        clients.upload_io,
        provide_webhook_keys(state),
    )


def provide_preset_service(state: State) -> PresetService:
    return PresetService(state.clients.kube, state.settings.namespace)


def upload_limiters(settings: ApiSettings) -> dict[RateGroup, TokenBucketLimiter]:
    """Per-user limits of the upload groups: a minute's worth at once, then the rate."""
    per_minute = {
        RateGroup.IMAGE: settings.rate_limit_image_per_minute,
        RateGroup.VIDEO: settings.rate_limit_video_per_minute,
        RateGroup.BATCH: settings.rate_limit_batch_per_minute,
    }
    return {
        group: TokenBucketLimiter(max(1, int(rate)), rate) for group, rate in per_minute.items()
    }


def create_app(
    settings: ApiSettings | None = None,
    *,
    clients_factory: Callable[[ApiSettings], Clients] = open_clients,
) -> Litestar:
    """The API for `settings` (default: from the environment).

    `clients_factory` opens the Kubernetes and MinIO clients when the app starts; unit tests
    pass fakes, everything else keeps the default.
    """
    settings = settings or ApiSettings()  # type: ignore[call-arg]  # required fields from env

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        clients = clients_factory(settings)
        app.state.clients = clients
        app.state.health_checks = HealthChecks(
            clients, settings.s3_bucket, settings.namespace, settings.health_timeout_seconds
        )
        try:
            yield
        finally:
            clients.close()

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            HealthController,
            JobsController,
            PresetsController,
            WebhooksController,
            *UPLOAD_HANDLERS,
        ],
    )
    limiter = TokenBucketLimiter(
        settings.auth_rate_limit_burst, settings.auth_rate_limit_per_minute
    )
    # --- auth lane: per-account limit, bounded password hashing, trusted proxies.
    account_limiter = TokenBucketLimiter(
        settings.auth_account_rate_limit_burst, settings.auth_account_rate_limit_per_minute
    )
    password_hashing = PasswordHashing(
        concurrency=settings.password_hash_concurrency,
        max_waiting=settings.password_hash_max_waiting,
        queue_seconds=settings.password_hash_queue_seconds,
        memory_kib=settings.password_hash_memory_kib,
    )
    # --- end of the auth lane's block.
    return Litestar(
        # /metrics, and the web console at / (docs/console.md): both outside the OpenAPI schema.
        route_handlers=[api, MetricsController, console_router(settings)],
        lifespan=[lifespan],
        # The request context first: it is current while the metrics middleware and the
        # handler run. Every response (routing errors too) gets X-Request-ID in before_send.
        middleware=[RequestContextMiddleware(), PROMETHEUS.middleware],
        before_send=[before_send],
        # Logging is the entrypoint's (logs.configure_logging): Litestar's default config
        # would replace the root handler with its own text format.
        logging_config=None,
        state=State(
            {
                "settings": settings,
                "token_codec": TokenCodec.from_settings(settings),
                "auth_limiter": limiter,
                "account_limiter": account_limiter,
                "password_hashing": password_hashing,
                "trusted_proxies": parse_networks(settings.trusted_proxies),
                "upload_limiters": upload_limiters(settings),
                # Uploads in progress, per process and per user (uploads/slots.py).
                "upload_slots": UploadSlots(
                    settings.max_concurrent_uploads,
                    settings.max_concurrent_uploads_per_user,
                    stalled_seconds=settings.upload_stalled_seconds,
                ),
                # Presigns result URLs offline (the region is set): no connection is opened.
                "storage": Storage(settings),
            }
        ),
        dependencies={
            "settings": Provide(provide_settings, sync_to_thread=False),
            "kube": Provide(provide_kube, sync_to_thread=False),
            "minio": Provide(provide_minio, sync_to_thread=False),
            "health_checks": Provide(provide_health_checks, sync_to_thread=False),
            "auth_service": Provide(provide_auth_service, sync_to_thread=False),
            "job_service": Provide(provide_job_service, sync_to_thread=False),
            "upload_service": Provide(provide_upload_service, sync_to_thread=False),
            "preset_service": Provide(provide_preset_service, sync_to_thread=False),
            "webhook_keys": Provide(provide_webhook_keys, sync_to_thread=False),
            # Blocking: reads the user's Secret.
            "current_user": Provide(provide_current_user, sync_to_thread=True),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=answer_options,  # OPTIONS lists every method (see routing.py)
        cors_config=CORSConfig(
            allow_origins=settings.cors_origins, expose_headers=[REQUEST_ID_HEADER]
        )
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(
            title="MediaFlow API",
            version=version("mediaflow"),
            description="Convert images and videos; every job is a MediaJob in Kubernetes.",
            path=DOCS_PATH,
            render_plugins=[SwaggerRenderPlugin(path="/")],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="An access token from /api/v1/auth/login.",
                    )
                }
            ),
        ),
    )
