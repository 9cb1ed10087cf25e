"""The contract every notification channel adapter keeps."""

from typing import Protocol

from pingan.schemas.delivery import ReconcileResult, SendResult
from pingan.schemas.notification import Notification


class ChannelAdapter(Protocol):
    """Sends one notification. Adapters must not raise for delivery problems: they return a SendResult."""

    name: str

    def send(self, notification: Notification) -> SendResult: ...

    def reconcile(self, notification: Notification) -> ReconcileResult:
        """After a crash between "sending" and recording the result: did this notification go out?"""
        ...
