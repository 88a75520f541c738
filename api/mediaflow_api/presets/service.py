"""The presets the API offers: the MediaPresets of its own namespace and every
ClusterMediaPreset.

Lookup order of `preset=<name>`: the MediaPreset `<name>` of the API's namespace first, then
the ClusterMediaPreset `<name>`; so a release can shadow a cluster-wide preset with its own.
The MediaJob then names the one found (its kind and name), and the operator reads it again
when it accepts the MediaJob (the preset as it is then is what runs, recorded in the status).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, Field, ValidationError

from mediaflow_api.uploads.forms import endpoints_for
from mediaflow_core import constants as c
from mediaflow_core.mediajob import PresetKind, PresetRef
from mediaflow_core.preset import PLURALS, PresetSpec, preset_spec


class PresetView(BaseModel):
    """A preset an upload may name (`preset=<name>`)."""

    name: str
    kind: PresetKind = Field(description="MediaPreset (the API's namespace) or ClusterMediaPreset.")
    operation: str = Field(description="The MediaJob operation it runs.")
    description: str | None = None
    options: dict[str, Any] = Field(
        description="Its options as the MediaJob resource writes them: the operation's options "
        "block (e.g. {'imageConvert': {'format': 'webp', ...}}) or {'renditions': [...]}."
    )
    endpoints: list[str] = Field(description="The upload endpoints that take it.")
    shadowed: bool = Field(
        default=False,
        description="A ClusterMediaPreset with the name of a MediaPreset of the API's "
        "namespace: `preset=<name>` uses the MediaPreset.",
    )


class PresetList(BaseModel):
    items: list[PresetView]


class PresetService:
    """Reads presets with the API's service account (get and list on both kinds)."""

    def __init__(self, api: kube.ApiClient, namespace: str) -> None:
        self.custom = kube.CustomObjectsApi(api)
        self.namespace = namespace

    def read(self, kind: PresetKind, name: str) -> dict[str, Any] | None:
        try:
            if kind is PresetKind.CLUSTER_MEDIA_PRESET:
                return self.custom.get_cluster_custom_object(
                    c.GROUP, c.VERSION, PLURALS[kind], name
                )
            return self.custom.get_namespaced_custom_object(
                c.GROUP, c.VERSION, self.namespace, PLURALS[kind], name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def find(self, name: str) -> tuple[PresetRef, dict[str, Any]] | None:
        """The preset `preset=<name>` means (see the lookup order above), or None."""
        for kind in (PresetKind.MEDIA_PRESET, PresetKind.CLUSTER_MEDIA_PRESET):
            body = self.read(kind, name)
            if body is not None:
                return PresetRef(name=name, kind=kind), body
        return None

    def list(self) -> PresetList:
        """Every valid preset users may name, namespaced first, by name."""
        namespaced = self.custom.list_namespaced_custom_object(
            c.GROUP, c.VERSION, self.namespace, PLURALS[PresetKind.MEDIA_PRESET]
        )["items"]
        cluster = self.custom.list_cluster_custom_object(
            c.GROUP, c.VERSION, PLURALS[PresetKind.CLUSTER_MEDIA_PRESET]
        )["items"]
        return PresetList(items=views(namespaced, cluster))


def views(namespaced: list[dict[str, Any]], cluster: list[dict[str, Any]]) -> list[PresetView]:
    """The list GET /api/v1/presets answers (pure): presets whose spec does not validate are
    left out (no upload could use them)."""
    local = {body["metadata"]["name"] for body in namespaced}
    found: list[PresetView] = []
    for kind, bodies in (
        (PresetKind.MEDIA_PRESET, namespaced),
        (PresetKind.CLUSTER_MEDIA_PRESET, cluster),
    ):
        for body in sorted(bodies, key=lambda b: b["metadata"]["name"]):
            try:
                spec = preset_spec(body)
            except ValidationError:
                continue
            name = body["metadata"]["name"]
            found.append(view(name, kind, spec, shadowed=kind is not PresetKind.MEDIA_PRESET
                              and name in local))  # fmt: skip
    return found


def view(name: str, kind: PresetKind, spec: PresetSpec, *, shadowed: bool = False) -> PresetView:
    block = spec.options_block()
    operation = block.pop("operation")
    return PresetView(
        name=name,
        kind=kind,
        operation=operation,
        description=spec.description,
        options=block,
        endpoints=endpoints_for(spec),
        shadowed=shadowed,
    )
