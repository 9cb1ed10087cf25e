"""What every intake endpoint checks before it parses: who is calling, how big, how often."""

import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from pingan import metrics
from pingan.settings import Settings
from pingan.web.intake_tokens import METRICS, IntakeToken, IntakeTokens
from pingan.web.intake_tokens import load_tokens as _load_tokens

log = logging.getLogger("pingan.intake")


def load_tokens(settings: Settings) -> IntakeTokens:
    """Configured tokens win; a source without one gets a generated token kept in the data dir (mode 0600). Several
    tokens per source, each bound to what it may speak for: web/intake_tokens.py."""
    return _load_tokens(settings.intake_tokens, settings.metrics_token, settings.data_dir)


def check_bearer(request: Request, source: str, tokens: Mapping[str, str]) -> IntakeToken:
    """Which of `source`'s tokens the caller brings; 401 when none."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    found = IntakeTokens.of(tokens).find(source, given) if scheme.lower() == "bearer" and given else None
    if found is None:
        log.warning("intake %s: 401 %s bearer token from %s", source, "missing" if not given else "wrong",
                    request.client.host if request.client else "?")
        metrics.intake(source, "unauthorized")
        raise HTTPException(401, f"{source}: missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


def same_secret(given: str, expected: str) -> bool:
    """A constant-time comparison of any two strings: compare_digest refuses a str with non-ASCII characters
    (TypeError, a 500), and whatever a client sends in a header or a form reaches here."""
    return secrets.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def check_metrics_token(request: Request, tokens: dict[str, str]) -> None:
    """/metrics is for the scraper: its own bearer token (PINGAN_METRICS_TOKEN, or `metrics` in the token file)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = tokens.get(METRICS)
    if scheme.lower() != "bearer" or not given or expected is None or not same_secret(given, expected):
        raise HTTPException(401, "metrics: missing or wrong bearer token (PINGAN_METRICS_TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})


@dataclass
class RateLimiter:
    """A token bucket per key (a source, or a client address): a burst of one minute's allowance, refilled
    continuously. `setting` is named in the 429, so the operator knows what to raise."""

    per_minute: int
    setting: str = "PINGAN_INTAKE_RATE_PER_MINUTE"
    max_keys: int = 10_000  # client addresses are many: full buckets are dropped beyond this (see _prune)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str, now: float | None = None) -> int | None:
        """Use one request of `key`'s allowance: None when there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return max(1, int((1.0 - tokens) / rate + 0.999))
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now, rate)
        return None

    def _prune(self, now: float, rate: float) -> None:
        # A bucket that has refilled is the same as no bucket; if every one is still in use, the oldest go.
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * rate >= self.per_minute]
        for key in full or sorted(self._buckets, key=lambda k: self._buckets[k][1])[: len(self._buckets) // 2]:
            del self._buckets[key]

    def check(self, key: str, now: float | None = None, who: str | None = None) -> None:
        """The allowance of `key`, an intake token (`cap:nws`, or `cap` for a source's single token) or a signed
        source (`twilio_sms`): only requests that proved who they are use it. 429 naming `who` (default the key)
        and when to come back once it is used up. The metric is per source (the key's part before `:`)."""
        retry_after = self.take(key, now)
        if retry_after is not None:
            source = key.partition(":")[0]
            log.warning("intake %s: 429 rate limit of %s (%d/min)", source, key, self.per_minute)
            metrics.intake(source, "rate_limited")
            raise HTTPException(429, f"{who or key}: more than {self.per_minute} requests a minute ({self.setting}); "
                                f"retry after {retry_after} s", headers={"Retry-After": str(retry_after)})


def charge_unauthenticated(limiter: RateLimiter, request: Request, source: str) -> None:
    """A request that failed authentication uses its client address's budget, never the source's allowance (junk
    must not starve the real sender); 429 once the address has used it up, else the caller refuses it as usual."""
    address = request.client.host if request.client else "?"
    retry_after = limiter.take(address)
    if retry_after is not None:
        log.warning("intake %s: 429 unauthenticated requests from %s over %d/min", source, address,
                    limiter.per_minute)
        metrics.intake(source, "rate_limited")
        raise HTTPException(429, f"{source}: more than {limiter.per_minute} unauthenticated requests a minute from "
                            f"{address} ({limiter.setting})", headers={"Retry-After": str(retry_after)})


async def read_body(request: Request, source: str, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to be too large (by Content-Length, or while streaming)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        log.warning("intake %s: 413 body of %s bytes", source, declared)
        metrics.intake(source, "too_large")
        raise HTTPException(413, f"{source}: body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            log.warning("intake %s: 413 body over %d bytes", source, limit)
            metrics.intake(source, "too_large")
            raise HTTPException(413, f"{source}: body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
