"""Twilio SMS channel on the official twilio client (9.x). Never raises: every problem is a SendResult."""

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from pingan.schemas.delivery import ReconcileOutcome, ReconcileResult, SendOutcome, SendResult
from pingan.schemas.notification import Notification

if TYPE_CHECKING:
    from pingan.settings import Settings

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Twilio trial accounts prepend this to every body; reconcile must still recognise the message.
TRIAL_PREFIX = "Sent from your Twilio trial account - "
RECONCILE_SLACK = timedelta(minutes=1)  # clock skew between us and Twilio
RECONCILE_LIMIT = 200


class TwilioSmsChannel:
    name = "twilio_sms"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_base_url: str | None = None,
                 timeout_s: float = 10, status_callback: str | None = None) -> None:
        self.from_number = from_number
        self.status_callback = status_callback
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))
        if api_base_url:
            # Every Twilio API call the channel makes goes through the "api" Domain, whose base_url is a plain
            # attribute that Domain.absolute_url() joins with the path (paging links included).
            self.client.api.base_url = api_base_url.rstrip("/")
            # TWILIO_EDGE / TWILIO_REGION from the environment would rewrite the host into *.twilio.com.
            self.client.edge = None
            self.client.region = None

    def send(self, notification: Notification) -> SendResult:
        to = notification.recipient.address
        if not E164.match(to):
            return SendResult(SendOutcome.permanent_failure, detail=f"recipient address {to!r} is not E.164")
        kwargs: dict[str, Any] = {"to": to, "from_": self.from_number, "body": notification.text}
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as e:
            return _rest_failure(e)
        except (requests.RequestException, TwilioException) as e:
            # Refused, reset or timed out: worth a retry. A read timeout can hide a message Twilio accepted,
            # so the retry may text twice; we accept that rather than drop an emergency SMS.
            detail = f"twilio unreachable: {type(e).__name__}: {e}"
            return SendResult(SendOutcome.transient_failure, detail=detail)
        except Exception as e:  # noqa: BLE001 - the contract is "never raise"
            # Unexpected (e.g. a garbled 2xx): we cannot tell whether it went out, so do not retry.
            detail = f"twilio client error: {type(e).__name__}: {e}"
            return SendResult(SendOutcome.permanent_failure, detail=detail)
        return SendResult(SendOutcome.accepted, provider_id=message.sid,
                          extra={"status": str(message.status)})

    def reconcile(self, notification: Notification) -> ReconcileResult:
        n = notification
        if not E164.match(n.recipient.address):
            return ReconcileResult(ReconcileOutcome.not_sent, detail="not E.164: never sent to Twilio")
        since = n.created_at - RECONCILE_SLACK
        try:
            sid = self._find(n, since)
        except Exception as e:  # noqa: BLE001 - any failure to look means we cannot tell
            return ReconcileResult(ReconcileOutcome.unknown, detail=f"twilio message list failed: {e!r}")
        if sid is None:
            return ReconcileResult(ReconcileOutcome.not_sent, detail="no matching message at twilio")
        return ReconcileResult(ReconcileOutcome.sent, provider_id=sid)

    def _find(self, n: Notification, since: datetime) -> str | None:
        messages = self.client.messages
        to, from_ = n.recipient.address, self.from_number
        # Bounded by time, not by count: a busy number may have had hundreds of messages since `since`.
        for m in messages.stream(to=to, from_=from_, date_sent_after=since):
            if _same_body(m.body, n.text):
                return m.sid
        # A message still queued has no date_sent, so the filter above misses it: look at recent ones too.
        for m in messages.list(to=to, from_=from_, limit=RECONCILE_LIMIT):
            if m.date_sent is None and (m.date_created is None or m.date_created >= since) \
                    and _same_body(m.body, n.text):
                return m.sid
        return None


def _same_body(body: str | None, text: str) -> bool:
    return body is not None and (body == text or body == TRIAL_PREFIX + text)


def _rest_failure(e: TwilioRestException | TwilioServiceException) -> SendResult:
    message = e.msg if isinstance(e, TwilioRestException) else (e.detail or e.title)
    detail = f"twilio HTTP {e.status}, error {e.code}: {message}"
    extra = {"http_status": e.status, "code": e.code}
    # 429 and 5xx are Twilio's "try again"; any other 4xx (bad number, auth, blocked) will fail again.
    if e.status == 429 or e.status >= 500:
        return SendResult(SendOutcome.transient_failure, detail=detail, extra=extra)
    return SendResult(SendOutcome.permanent_failure, detail=detail, extra=extra)


def twilio_channel_from_settings(settings: "Settings") -> TwilioSmsChannel | None:
    """The configured channel, or None when the account SID, auth token and From number are not all set."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number):
        return None
    # With a public URL, Twilio reports delivery to us (delivered / failed entries in the log).
    callback = f"{settings.public_url.rstrip('/')}/v1/intake/twilio/status" if settings.public_url else None
    return TwilioSmsChannel(settings.twilio_account_sid, settings.twilio_auth_token,
                            settings.twilio_from_number, api_base_url=settings.twilio_api_base_url,
                            status_callback=callback)
