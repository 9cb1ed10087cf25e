"""The contract every notification channel adapter keeps."""

from typing import Literal, Protocol

from pingan.schemas.delivery import ReconcileResult, SendResult
from pingan.schemas.notification import Notification

# What a channel promises per intent, read by the notifier: exactly_once (reconcile can tell whether a send in
# doubt went out: console, Twilio SMS), at_most_once (in doubt, it does not send again: Twilio voice), and
# at_least_once (in doubt, it sends again with the same idempotency key: webhook, e-mail).
Guarantee = Literal["exactly_once", "at_most_once", "at_least_once"]
# Which of a recipient's messages the notifier keeps in order: all of them (a person reads an SMS, a call or an
# e-mail in the order it came), or those of one incident (a system's receiver: each request names its incident
# and carries its key, and holding one incident's webhook behind another's capped a receiver at one round trip at
# a time, about 20 a second: bench/versus_alertmanager.py, issue 15).
OrderScope = Literal["recipient", "incident"]


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


def order_scope_of(channel: object) -> OrderScope:
    """A channel's ordering, from its `order_scope` attribute; one that does not say (people's channels, a test
    double, or no channel at all) keeps one order per recipient."""
    return getattr(channel, "order_scope", "recipient")  # type: ignore[no-any-return]
