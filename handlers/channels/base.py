"""The contract every notification channel adapter keeps."""

from typing import Literal, Protocol

from pingan.schemas.delivery import ReconcileResult, SendResult
from pingan.schemas.notification import Notification

# What a channel promises per intent, read by the notifier: exactly_once (reconcile can tell whether a send in
# doubt went out: console, Twilio SMS), at_most_once (in doubt, it does not send again: Twilio voice), and
# at_least_once (in doubt, it sends again with the same idempotency key: webhook, e-mail).
Guarantee = Literal["exactly_once", "at_most_once", "at_least_once"]


class ChannelAdapter(Protocol):
    """Sends one notification. Adapters must not raise for delivery problems: they return a SendResult."""

    name: str
    guarantee: Guarantee

    def send(self, notification: Notification) -> SendResult: ...

    def reconcile(self, notification: Notification) -> ReconcileResult:
        """After a crash between "sending" and recording the result: did this notification go out?"""
        ...


def guarantee_of(channel: object) -> Guarantee:
    """A channel's promise; an adapter that does not say (a test double) is taken as exactly_once."""
    return getattr(channel, "guarantee", "exactly_once")  # type: ignore[no-any-return]
