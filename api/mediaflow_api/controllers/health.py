"""`/api/v1/health`."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.health import HealthChecks, HealthReport


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        operation_id="getHealth",
        summary="Health of the Kubernetes API and MinIO",
        description="200 when every component is up; 503, naming the components that are "
        "down, otherwise.",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                Envelope[HealthReport], description="A component is down (`success: false`)."
            )
        },
        response_description="Every component is up.",
        cache=False,
    )
    async def get_health(
        self, health_checks: NamedDependency[HealthChecks]
    ) -> Response[Envelope[HealthReport]]:
        report = await health_checks.report()
        if down := report.down:
            return Response(
                envelope(report, f"Unavailable: {', '.join(down)} down.", success=False),
                status_code=HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(envelope(report, "All components are up."), status_code=HTTP_200_OK)
