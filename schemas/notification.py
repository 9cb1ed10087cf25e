"""A dispatch order: one message to one recipient over one channel."""

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import Field

from pingan.schemas.common import Model, UtcDatetime
from pingan.schemas.taxonomy import IncidentStatus


class Channel(StrEnum):
    console = "console"
    twilio_sms = "twilio_sms"
    twilio_voice = "twilio_voice"
    webhook = "webhook"
    email = "email"


class Recipient(Model):
    id: str = Field(min_length=1, max_length=100, description="Stable id of the person or post, e.g. duty-room")
    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    address: str = Field(min_length=1, max_length=200, description="Phone number in E.164, or a console name")
    lang: str = Field(default="zh", pattern=r"^(zh|en)$")


class DeliveryState(StrEnum):
    intended = "intended"  # recorded, not yet handed to the channel
    sending = "sending"  # handed to the channel; outcome not yet recorded (reconciled after a crash)
    sent = "sent"  # the channel accepted it
    delivered = "delivered"  # the channel confirmed delivery
    failed = "failed"


def idempotency_key(incident_id: str, plan_id: str, plan_version: int, step: str, recipient_id: str,
                    attempt: int) -> str:
    basis = "|".join([incident_id, plan_id, str(plan_version), step, recipient_id, str(attempt)])
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


class Notification(Model):
    idempotency_key: str = Field(min_length=8, max_length=64)
    incident_id: str
    incident_status: IncidentStatus = IncidentStatus.actual
    plan_id: str
    plan_version: int
    step: str
    attempt: int = Field(default=1, ge=1)
    recipient: Recipient
    channel: Channel
    text: str = Field(min_length=1, max_length=1600)
    created_at: UtcDatetime
    drill_run: str | None = Field(default=None, max_length=64,
                                  description="An exercise's drill run: the notifier reads its live participants")
    document: dict[str, Any] | None = Field(
        default=None, description="For a webhook: the JSON document it carries besides the standard fields (a "
        "published release and its CAP identifier, issue 17)")
