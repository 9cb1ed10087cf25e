"""Webhook channel: a signed JSON POST to the recipient's URL. Never raises: every problem is a SendResult.

Signing works like Stripe's: X-Pingan-Timestamp carries the Unix time in seconds, and X-Pingan-Signature is
"sha256=" + hex HMAC-SHA256(secret, f"{timestamp}.{body}") over the exact bytes of the body. Binding the
timestamp into the MAC lets a receiver refuse replays of an old request (verify(), tolerance 5 minutes), and
signing the raw bytes means the receiver must check them before parsing. Every retry carries the same
Idempotency-Key header (the notification's key), so a receiver that remembers keys sees each notification once.

Webhooks are at-least-once: a timeout, a 5xx, a lost connection or a worker killed mid-request is sent again
(with backoff, up to the notifier's attempt limit), never written off as "cannot tell". A receiver that acts on
a request must drop a repeated Idempotency-Key. One pooled httpx.Client per channel carries every request, so
concurrent sends to one receiver reuse its keep-alive connections.
"""

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from pingan.schemas.delivery import ReconcileOutcome, ReconcileResult, SendOutcome, SendResult
from pingan.schemas.notification import Notification

SIGNATURE_HEADER = "X-Pingan-Signature"
TIMESTAMP_HEADER = "X-Pingan-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_S = 300
# 408 (timeout), 425 (too early) and 429 (throttled) mean "not now"; with 5xx, the only 4xx worth a retry.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """The X-Pingan-Signature value for a body sent at `timestamp`: "sha256=<hex>"."""
    mac = hmac.new(_bytes(secret), _bytes(str(timestamp)) + b"." + _bytes(body), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int | str, body: str | bytes, signature: str,
           tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> bool:
    """For receivers: True when `signature` (the header value) signs this exact body and timestamp, and the
    timestamp is within tolerance_s of now (either side, for clock skew). Pass the raw body, not re-serialised
    JSON: any byte of difference fails."""
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False  # a replay of a captured request, or a clock too far off to trust
    return hmac.compare_digest(sign(secret, sent_at, body), signature.strip())


def payload(n: Notification) -> dict[str, Any]:
    """The JSON document a receiver gets; the recipient's URL is left out, since the receiver knows it. A
    notification carrying a document (a published release) has it under its own keys besides."""
    return {**(n.document or {}), **{
        "idempotency_key": n.idempotency_key,
        "incident_id": n.incident_id,
        "incident_status": n.incident_status.value,
        "plan_id": n.plan_id,
        "plan_version": n.plan_version,
        "step": n.step,
        "recipient": {"id": n.recipient.id, "name": n.recipient.name},
        "text": n.text,
        "created_at": n.created_at.isoformat(),
    }}


class WebhookChannel:
    """POSTs each notification once per send(), over one pooled client.

    reconcile() answers not_sent: a webhook endpoint cannot be asked whether it got a request, so a request in
    doubt is sent again with the same Idempotency-Key, which is the receiver's to drop (at-least-once). Leaving
    it "unknown" wrote real alerts off after 30 attempts (issue 15).
    """

    name = "webhook"
    guarantee = "at_least_once"
    order_scope = "incident"  # a system: one incident's webhooks in order, different incidents' at once

    def __init__(self, secret: str | None, timeout_s: float = 10, pool_size: int = 20,
                 url_secrets: dict[str, str] | None = None) -> None:
        if not secret and not url_secrets:
            raise ValueError("a webhook secret is required: receivers could not tell our requests from forgeries")
        self._secret = secret
        # Systems with a key of their own (the release webhook's receivers, PINGAN_RELEASE_WEBHOOKS): by exact URL.
        self._url_secrets = dict(url_secrets or {})
        self.timeout_s = timeout_s
        # Redirects are not followed, so the signed body only ever goes to the URL the plan names. httpx.Client is
        # thread-safe; its pool is sized for the notifier's concurrency on this channel.
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False, limits=httpx.Limits(
            max_connections=max(1, pool_size), max_keepalive_connections=max(1, pool_size)))

    def close(self) -> None:
        self._client.close()

    def send(self, notification: Notification) -> SendResult:
        n = notification
        url = n.recipient.address
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return SendResult(SendOutcome.permanent_failure, detail=f"recipient address {url!r} is not an http(s) URL")
        secret = self._url_secrets.get(url) or self._secret
        if not secret:
            return SendResult(SendOutcome.permanent_failure, detail=f"no webhook secret for {url!r}")
        body = json.dumps(payload(n), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            IDEMPOTENCY_HEADER: n.idempotency_key,
            "User-Agent": "pingan-webhook/1",
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as e:
            # The receiver may have acted before we gave up; the retry repeats the Idempotency-Key for it.
            return SendResult(SendOutcome.transient_failure, detail=f"webhook timed out: {type(e).__name__}: {e}")
        except httpx.TransportError as e:
            return SendResult(SendOutcome.transient_failure, detail=f"webhook unreachable: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - the contract is "never raise"
            return SendResult(SendOutcome.permanent_failure, detail=f"webhook client error: {type(e).__name__}: {e}")
        return _classify(response)

    def reconcile(self, notification: Notification) -> ReconcileResult:
        return ReconcileResult(ReconcileOutcome.not_sent, detail="at-least-once: a webhook endpoint cannot be "
                               "asked, so it is sent again with the same Idempotency-Key")


def _classify(response: httpx.Response) -> SendResult:
    status = response.status_code
    detail = f"webhook HTTP {status}"
    reason = response.text[:200].strip()
    if reason:
        detail += f": {reason}"
    extra = {"http_status": status}
    if 200 <= status < 300:
        # The receiving system itself answered that it has the notification: that is delivery.
        return SendResult(SendOutcome.delivered, detail=detail, extra=extra)
    if status >= 500 or status in TRANSIENT_STATUSES:
        return SendResult(SendOutcome.transient_failure, detail=detail, extra=extra)
    # Other 4xx (400, 401 bad signature, 404, 410 gone) and unfollowed 3xx will answer the same way next time.
    return SendResult(SendOutcome.permanent_failure, detail=detail, extra=extra)
