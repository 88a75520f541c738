"""`/api/v1/webhooks`: the signing secret of the user's completion webhooks (issue 15)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from pydantic import BaseModel, Field

from mediaflow_api.auth.schemas import UserView
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.problems import problem_responses
from mediaflow_api.webhooks.keys import SigningSecret, WebhookKeys


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="Your signing secret, `whsec_<base64>` as Standard Webhooks defines it: "
        "give it to a Standard Webhooks library to verify the webhooks of your jobs' "
        "callback_url."
    )
    previous_secret: str | None = Field(
        default=None,
        description="After a rotation, the secret before it: webhooks are signed with both "
        "until previous_expires_at.",
    )
    previous_expires_at: datetime | None = Field(
        default=None, description="When the previous secret stops signing."
    )


def view(found: SigningSecret) -> WebhookSecret:
    return WebhookSecret(
        secret=found.secret,
        previous_secret=found.previous,
        previous_expires_at=found.previous_expires_at,
    )


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"BearerToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    # Sync handlers in worker threads: the Kubernetes client blocks.
    @get(
        "/secret",
        operation_id="getWebhookSecret",
        summary="Your webhook signing secret",
        description="The secret that signs the webhooks of your uploads' `callback_url` "
        "(made on first use).",
        responses=problem_responses(
            400,
            401,
            409,
            503,
            meanings={
                409: "The signing secrets changed too often meanwhile: try again.",
                503: "The Secret of signing secrets is not made yet (the operator makes it "
                "when it starts): try again later.",
            },
        ),
        sync_to_thread=True,
    )
    def get_secret(
        self, current_user: NamedDependency[UserView], webhook_keys: NamedDependency[WebhookKeys]
    ) -> Envelope[WebhookSecret]:
        return envelope(view(webhook_keys.get(current_user.id)))

    @post(
        "/secret/rotate",
        operation_id="rotateWebhookSecret",
        summary="A new webhook signing secret",
        description="Makes a new signing secret. For the grace period "
        "(MEDIAFLOW_API_WEBHOOK_ROTATION_GRACE_SECONDS, a day) webhooks carry a signature "
        "with each, so receivers can switch without missing one.",
        status_code=HTTP_200_OK,
        responses=problem_responses(
            400,
            401,
            409,
            503,
            meanings={
                409: "The signing secrets changed too often meanwhile: try again.",
                503: "The Secret of signing secrets is not made yet (the operator makes it "
                "when it starts): try again later.",
            },
        ),
        sync_to_thread=True,
    )
    def rotate_secret(
        self, current_user: NamedDependency[UserView], webhook_keys: NamedDependency[WebhookKeys]
    ) -> Envelope[WebhookSecret]:
        return envelope(view(webhook_keys.rotate(current_user.id)), "rotated")
