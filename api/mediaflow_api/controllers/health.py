"""`/api/v1/health`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from mediaflow_api.auth.tokens import TokenCodec, TokenError, TokenType
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.health import HealthChecks, HealthReport


def shows_detail(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller may see versions and errors: it sends a valid access token.

    Only the token is checked (signature, expiry, type), not the user Secret: how much
    /health tells must not itself depend on the Kubernetes API being up.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    codec: TokenCodec = request.app.state.token_codec
    try:
        codec.decode(token.strip(), TokenType.ACCESS)
    except TokenError:
        return False
    return True


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        operation_id="getHealth",
        summary="Health of the Kubernetes API, the MediaJob queue, MinIO and the tools",
        description="200 when every component is up; 503, naming the components that are "
        "down, otherwise. `data.database`, `data.redis`, `data.minio`, `data.ffmpeg` and "
        "`data.cwebp` are `ok` or `error`, as the previous service's monitors read them "
        "(database: the Kubernetes API; redis: the MediaJob resource). Each component's "
        "`detail` (server version, error) is given only with a valid access token.",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                Envelope[HealthReport], description="A component is down (`success: false`)."
            )
        },
        response_description="Every component is up.",
        cache=False,
    )
    async def get_health(
        self, request: Request[Any, Any, Any], health_checks: NamedDependency[HealthChecks]
    ) -> Response[Envelope[HealthReport]]:
        report = await health_checks.report()
        if not shows_detail(request):
            report = report.without_detail()
        if down := report.down:
            return Response(
                envelope(report, f"Unavailable: {', '.join(down)} down.", success=False),
                status_code=HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(envelope(report, "All components are up."), status_code=HTTP_200_OK)
