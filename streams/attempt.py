"""One attempt at one claimed intent, shared by notify_stage (one at a time) and the concurrent notifier.

try_once() is the I/O (the channel's reconcile, then its send) and runs in a thread; settlement() turns its answer
into what the ledger records (store.ledger.Settlement), through the pure decision in handlers/incidents/delivery.
A retry first asks the channel whether an earlier attempt went out: exactly-once channels (console, Twilio SMS)
can tell; at-least-once ones (webhook, e-mail) answer not_sent and send again with the same idempotency key;
at-most-once ones (Twilio voice) record the doubt rather than ring twice.
"""

from dataclasses import dataclass

from pingan.handlers.channels.base import ChannelAdapter
from pingan.handlers.incidents.delivery import MAX_TRANSIENT_ATTEMPTS, after_send
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome, SendResult
from pingan.schemas.notification import DeliveryState, Notification
from pingan.store.ledger import Settlement

CONFIRMING = ("console", "sandbox")  # channels whose own record is delivery, not only acceptance


@dataclass(frozen=True)
class Tried:
    """What one attempt did: `result` None means "not now" (the channel cannot tell whether an earlier attempt
    went out yet; released for a later retry, `detail` says so). `sent`: the channel's send() was called."""

    result: SendResult | None
    sent: bool
    detail: str = ""

    @property
    def throttled(self) -> bool:
        return self.result is not None and bool(self.result.extra.get("throttled"))


def try_once(channel: ChannelAdapter, n: Notification, attempt: int, tried_before: bool | None = None) -> Tried:
    """Blocking: call it in a thread. Never raises (an adapter that does is a transient failure). `tried_before`
    (default: attempt > 1) makes it ask the channel first whether an earlier attempt went out."""
    try:
        if attempt > 1 if tried_before is None else tried_before:
            verdict = channel.reconcile(n)
            if verdict.outcome is ReconcileOutcome.sent:
                outcome = SendOutcome.delivered if channel.name in CONFIRMING else SendOutcome.accepted
                return Tried(SendResult(outcome, provider_id=verdict.provider_id, detail="found on retry"), False)
            if verdict.outcome is ReconcileOutcome.unknown:
                if attempt < MAX_TRANSIENT_ATTEMPTS:
                    return Tried(None, False, f"retry {attempt}: cannot tell whether it went out; later")
                # Still unknowable after every attempt: at most once means we record the doubt, not resend.
                return Tried(SendResult(SendOutcome.permanent_failure,
                                        detail=f"outcome unknown after {attempt} attempts"), False)
        return Tried(channel.send(n), True)
    except Exception as e:  # noqa: BLE001 - an adapter broke its contract; a retry is the safe reading
        return Tried(SendResult(SendOutcome.transient_failure, detail=f"channel error: {type(e).__name__}: {e}"),
                     False)


def settlement(n: Notification, tried: Tried, attempt: int, via: str | None) -> Settlement:
    """What the ledger records for this attempt: a result with its log entries, or a release for a retry."""
    if tried.result is None:
        return Settlement(n.idempotency_key, DeliveryState.intended, tried.detail)
    result = tried.result
    decision = after_send(n, result, attempt, utcnow(), via)
    if decision.retry:
        return Settlement(n.idempotency_key, DeliveryState.intended, f"transient, attempt {attempt}: {result.detail}")
    return Settlement(n.idempotency_key, decision.state, result.detail, result.provider_id, decision.actions)
