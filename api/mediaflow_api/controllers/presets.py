"""`/api/v1/presets`: the presets an upload may name with `preset=<name>`."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from mediaflow_api.auth.schemas import UserView
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.presets.service import PresetList, PresetService
from mediaflow_api.problems import problem_responses


class PresetsController(Controller):
    path = "/presets"
    tags = ["presets"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"BearerToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        operation_id="listPresets",
        summary="The presets you may name in uploads",
        description="MediaPresets of the API's namespace and every ClusterMediaPreset, with "
        "their operation, options and the upload endpoints that take each one "
        "(`preset=<name>`). A MediaPreset shadows a ClusterMediaPreset of the same name.",
        responses=problem_responses(401),
        sync_to_thread=True,
    )
    def list_presets(
        self,
        current_user: NamedDependency[UserView],
        preset_service: NamedDependency[PresetService],
    ) -> Envelope[PresetList]:
        return envelope(preset_service.list())
