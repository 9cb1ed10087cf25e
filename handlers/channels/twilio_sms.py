"""Twilio SMS channel on the official twilio client (9.x). Never raises: every problem is a SendResult.

One client per channel, built once, over one pooled HTTP session sized for the notifier's concurrency
(`pool_size`), so concurrent sends reuse keep-alive connections instead of a TLS handshake each. Twilio's
back-pressure, HTTP 429 or error 20429 with its `Retry-After`, comes back as a transient failure marked
`throttled` with `retry_after_s`: the notifier queues the message again after that long, it never fails it.
"""

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
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
THROTTLE_CODES = frozenset({20429})  # Twilio's "Too Many Requests"; it comes with HTTP 429
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without a usable Retry-After
MAX_RETRY_AFTER_S = 60.0  # a Retry-After beyond this is capped: the notifier asks again rather than sleep for hours
DEFAULT_POOL_SIZE = 32


class PooledHttpClient(TwilioHttpClient):
    """TwilioHttpClient over one requests.Session whose pool holds `pool_size` connections for http and https
    (the stock client pools 10 for http and cpu+4 for https: concurrent sends beyond that open and drop a
    connection each), and which remembers the last response per thread, so a sender can read the
    Retry-After of its own 429 (the twilio exception does not carry headers)."""

    def __init__(self, timeout: float, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size))
        assert self.session is not None
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._local.response = None
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response

    def last_header(self, name: str) -> str | None:
        response = getattr(self._local, "response", None)
        headers = getattr(response, "headers", None) or {}
        return headers.get(name)  # requests' headers are case-insensitive


def retry_after_s(value: str | None) -> float:
    """Seconds from a Retry-After header (seconds, or an HTTP date), within [0, MAX_RETRY_AFTER_S]."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def build_client(account_sid: str, auth_token: str, api_base_url: str | None, timeout_s: float,
                 pool_size: int) -> tuple[Client, PooledHttpClient]:
    http = PooledHttpClient(timeout=timeout_s, pool_size=pool_size)
    client = Client(account_sid, auth_token, http_client=http)
    if api_base_url:
        # Every Twilio API call the channels make goes through the "api" Domain, whose base_url is a plain
        # attribute that Domain.absolute_url() joins with the path (paging links included).
        client.api.base_url = api_base_url.rstrip("/")
        # TWILIO_EDGE / TWILIO_REGION from the environment would rewrite the host into *.twilio.com.
        client.edge = None
        client.region = None
    return client, http


class TwilioSmsChannel:
    name = "twilio_sms"
    guarantee = "exactly_once"  # reconcile lists the messages at Twilio: a send in doubt is found, not repeated

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_base_url: str | None = None,
                 timeout_s: float = 10, status_callback: str | None = None,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.from_number = from_number
        self.sender = from_number  # the notifier's per-sender rate limit keys on it
        self.status_callback = status_callback
        self.client, self._http = build_client(account_sid, auth_token, api_base_url, timeout_s, pool_size)

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
            return _rest_failure(e, self._http.last_header("Retry-After"))
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


def _rest_failure(e: TwilioRestException | TwilioServiceException, retry_after: str | None = None) -> SendResult:
    message = e.msg if isinstance(e, TwilioRestException) else (e.detail or e.title)
    detail = f"twilio HTTP {e.status}, error {e.code}: {message}"
    extra: dict[str, Any] = {"http_status": e.status, "code": e.code}
    if e.status == 429 or e.code in THROTTLE_CODES:
        # Back-pressure, not a failure: the notifier waits Retry-After and queues it again (no attempt spent).
        extra.update(throttled=True, retry_after_s=retry_after_s(retry_after))
        return SendResult(SendOutcome.transient_failure, detail=detail, extra=extra)
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
                            status_callback=callback, pool_size=settings.notify_limit("twilio_sms"))
