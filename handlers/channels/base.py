"""The contract every notification channel adapter keeps."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pingan.schemas.notification import Notification


class SendOutcome(StrEnum):
    delivered = "delivered"  # the channel itself confirms delivery (console: written and flushed)
    accepted = "accepted"  # the provider took it; delivery is confirmed later (Twilio status callback)
    transient_failure = "transient_failure"  # 5xx, timeout, connection refused: may be retried
    permanent_failure = "permanent_failure"  # invalid number, not configured: never retried


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_id: str | None = None  # e.g. the Twilio Message SID
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ReconcileOutcome(StrEnum):
    sent = "sent"  # evidence that the message went out: do not send again
    not_sent = "not_sent"  # evidence that it did not: safe to send
    unknown = "unknown"  # no way to tell: at-most-once means we do not send again


@dataclass(frozen=True)
class ReconcileResult:
    outcome: ReconcileOutcome
    provider_id: str | None = None
    detail: str = ""


class ChannelAdapter(Protocol):
    """Sends one notification. Adapters must not raise for delivery problems: they return a SendResult."""

    name: str

    def send(self, notification: Notification) -> SendResult: ...

    def reconcile(self, notification: Notification) -> ReconcileResult:
        """After a crash between "sending" and recording the result: did this notification go out?"""
        ...
