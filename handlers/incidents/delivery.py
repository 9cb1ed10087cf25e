"""What a channel's answer means for the ledger and the log. Pure: data in, decision out."""

from dataclasses import dataclass
from datetime import datetime

from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.delivery import SendOutcome, SendResult
from pingan.schemas.notification import DeliveryState, Notification

ACTOR = "system:notifier"
MAX_TRANSIENT_ATTEMPTS = 30  # with backoff capped at 30 s: about a quarter of an hour of outage


@dataclass(frozen=True)
class DeliveryDecision:
    state: DeliveryState
    retry: bool
    actions: list[ActionDraft]


def _draft(n: Notification, kind: ActionKind, at: datetime, via: str | None = None, **details: object) -> ActionDraft:
    # `channel` is the one that carried it: a drill's SMS recorded in the sandbox is logged as channel=sandbox, with
    # the channel the plan asked for beside it, never as a delivered SMS.
    planned = n.channel.value
    carried = {"channel": via, "planned_channel": planned} if via and via != planned else {"channel": planned}
    return ActionDraft(
        incident_id=n.incident_id,
        at=at,
        actor=ACTOR,
        kind=kind,
        plan_id=n.plan_id,
        plan_version=n.plan_version,
        details={
            "notification": n.idempotency_key,
            "recipient": n.recipient.id,
            "recipient_name": n.recipient.name,
            **carried,
            "step": n.step,
            **details,
        },
        idempotency_key=f"{kind.value}:{n.idempotency_key}",
    )


def after_send(n: Notification, result: SendResult, attempt: int, now: datetime,
               via: str | None = None) -> DeliveryDecision:
    """`via`: the name of the channel adapter that carried it, when one did (the sandbox, for exercise traffic)."""
    provider = {"provider_id": result.provider_id} if result.provider_id else {}
    if result.outcome is SendOutcome.delivered:
        return DeliveryDecision(DeliveryState.delivered, False, [
            _draft(n, ActionKind.notified, now, via, **provider),
            _draft(n, ActionKind.delivered, now, via, **provider),
        ])
    if result.outcome is SendOutcome.accepted:
        return DeliveryDecision(DeliveryState.sent, False, [_draft(n, ActionKind.notified, now, via, **provider)])
    if result.outcome is SendOutcome.transient_failure and attempt < MAX_TRANSIENT_ATTEMPTS:
        return DeliveryDecision(DeliveryState.intended, True, [])
    return DeliveryDecision(DeliveryState.failed, False, [
        _draft(n, ActionKind.failed, now, via, reason=result.detail or result.outcome.value,
               outcome=result.outcome.value, attempts=attempt),
    ])


def retry_delay_s(attempt: int, jitter: float = 0.0) -> float:
    """Exponential backoff before attempt `attempt + 1`, capped at 30 s; `jitter` in [0, 1) spreads a herd."""
    return min(0.5 * (2 ** (attempt - 1)), 30.0) * (1.0 + 0.25 * jitter)
