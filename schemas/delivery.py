"""What a channel answers for one send, and for a reconcile after a crash mid-send: the shapes the notifier's
decisions (handlers.incidents.delivery) read and the channel adapters (handlers.channels) return."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
