"""The daily situation report (态势研判, issue 17): made in the worker at `sitrep_daily_at` local time, for yesterday.

A thread of the worker, like the log witness (pingan/log_witness.py): every `interval_s` it asks whether today's local
time has passed `sitrep_daily_at` and yesterday's report is not in the store yet; then it builds the report, stores it
with a `sitrep_issued` log entry (store/sitreps.py: once per day however many workers ask, and a restart finds it),
and sends it to `sitrep_daily_to`: e-mail addresses through the e-mail channel, https URLs through the signed webhook
channel (handlers/channels/), each with an idempotency key of the report and the recipient: an e-mail is the summary
with the report's HTML attached, a webhook the summary and the report's id. What each answered is
stored and logged (`sitrep_delivered`). A recipient whose server answered "try again later" is sent to again every
RETRY_S, up to MAX_ATTEMPTS (state `retry`, then `failed`). A worker that dies between issuing and settling leaves the
row `sending`; after TAKE_OVER_S any worker sends it again with the same keys (at least once, as those channels are).

A worker started after the hour issues the day's report then (catch-up); days missed before are not back-filled.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pingan import sitreps
from pingan.handlers.channels.email import EmailChannel
from pingan.handlers.sitreps.period import period_of
from pingan.handlers.sitreps.render import render_html, summary_text
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.delivery import SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.sitrep import Sitrep
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.store.sitreps import get_sitrep, issue, settle, take_over

log = logging.getLogger(__name__)
ACTOR = "system:sitrep"
TAKE_OVER_S = 600.0  # longer than the e-mail and webhook timeouts of every recipient together
RETRY_S = 300.0  # a recipient whose server said "try again later" (SMTP 4xx, 5xx / timeout from a webhook)
MAX_ATTEMPTS = 5  # per recipient: then the report is `failed` for them (the console shows it)
DELIVERED = {SendOutcome.delivered.value, SendOutcome.accepted.value}


def recipients(settings: Settings) -> list[str]:
    return [r.strip() for r in settings.sitrep_daily_to.split(",") if r.strip()]


def channel_of(address: str) -> Channel:
    return Channel.webhook if address.startswith(("https://", "http://")) else Channel.email


class ReportMail(EmailChannel):
    """The configured e-mail channel, with the report's HTML attached to the summary (same server, same Message-ID
    rule, same outcomes)."""

    def __init__(self, base: EmailChannel, html: str, filename: str) -> None:
        super().__init__(base.host, base.port, base.sender, base.username, base._password, base.starttls,
                         base.timeout_s)
        self.html, self.filename = html, filename

    def build_message(self, notification: Notification):  # type: ignore[no-untyped-def]
        msg = super().build_message(notification)
        msg.add_attachment(self.html, subtype="html", filename=self.filename)
        return msg


def daily_id(report_start: datetime, tz: ZoneInfo) -> str:
    return f"sitrep-day-{report_start.astimezone(tz).date().isoformat()}"


class DailySitreps:
    def __init__(self, store: Store, settings: Settings, channels: Mapping[str, object], interval_s: float = 30.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store, self.settings, self.channels = store, settings, channels
        self.interval_s, self.clock = interval_s, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitrep-daily", daemon=True)

    def start(self) -> None:
        if self.settings.sitrep_daily_at:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the store may be down: the next tick tries again
                log.exception("the daily situation report failed; trying again in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)

    def due(self, now: datetime) -> bool:
        at = self.settings.sitrep_daily_at
        if not at:
            return False
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        hour, minute = (int(x) for x in at.split(":"))
        return (local.hour, local.minute) >= (hour, minute)

    def tick(self, now: datetime | None = None) -> str | None:
        """Issue yesterday's report if it is time and nobody has; deliver deliveries left behind. The id it issued."""
        now = now or self.clock()
        issued = None
        if self.due(now):
            issued = self._issue(now)
        for sitrep_id in take_over(self.store.engine, now, TAKE_OVER_S, RETRY_S):
            row = get_sitrep(self.store.engine, sitrep_id)
            if row is not None and row.body:
                log.warning("delivering %s again (%s)", sitrep_id, "a retry" if row.state == "retry" else
                            "the worker that issued it did not finish")
                self.deliver(sitrep_id, Sitrep.model_validate_json(row.body), row.lang, now, row.html or "",
                             row.delivery if row.state == "retry" else {})
        return issued

    def _issue(self, now: datetime) -> str | None:
        tz = ZoneInfo(self.settings.timezone)
        period = period_of("day", now=now, tz=tz)
        sitrep_id = daily_id(period.start, tz)
        if get_sitrep(self.store.engine, sitrep_id) is not None:
            return None
        report = sitreps.build(self.store, self.settings, "day", as_of=now)
        lang, to = self.settings.sitrep_daily_lang, recipients(self.settings)
        draft = ActionDraft(incident_id=f"sitrep:{sitrep_id}", at=now, actor=ACTOR, kind=ActionKind.sitrep_issued,
                            details={"period": period.kind, "start": period.start.isoformat(),
                                     "end": period.end.isoformat(), "incidents": report.incidents,
                                     "still_open": len(report.still_open), "recipients": to},
                            idempotency_key=f"sitrep_issued:{sitrep_id}")
        html = render_html(report, lang)
        if not issue(self.store.engine, sitrep_id=sitrep_id, kind=period.kind, period_start=period.start,
                     period_end=period.end, generated_at=now, state="sending" if to else "stored", lang=lang,
                     body=report.model_dump_json(), html=html, draft=draft):
            return None  # another worker issued it a moment ago
        log.info("issued the daily situation report %s (%d incidents)", sitrep_id, report.incidents)
        if to:
            self.deliver(sitrep_id, report, lang, now, html)
        return sitrep_id

    def deliver(self, sitrep_id: str, report: Sitrep, lang: str, now: datetime, html: str = "",
                before: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """E-mail: the summary with the report's HTML attached; webhook: the summary and the report's id. `before`:
        the last attempt's results; recipients it delivered to, or that failed for good, are not sent to again."""
        text = summary_text(report, lang) + f"\n{sitrep_id}: GET /v1/sitreps/{sitrep_id}"
        results: dict[str, dict[str, Any]] = dict(before or {})
        for address in recipients(self.settings):
            last = results.get(address) or {}
            if last.get("outcome") in DELIVERED or last.get("outcome") == SendOutcome.permanent_failure.value:
                continue
            attempts = int(last.get("attempts") or 0) + 1
            channel = channel_of(address)
            key = hashlib.sha256(f"{sitrep_id}|{address}".encode()).hexdigest()[:32]
            adapter = self.channels.get(channel.value)
            if isinstance(adapter, EmailChannel) and html:
                adapter = ReportMail(adapter, html, f"{sitrep_id}.html")
            if adapter is None:
                results[address] = {"outcome": SendOutcome.permanent_failure.value, "attempts": attempts,
                                    "detail": f"channel {channel.value} is not configured"}
                continue
            n = Notification(idempotency_key=key, incident_id=f"sitrep:{sitrep_id}", plan_id="sitrep",
                             plan_version=1, step="daily", channel=channel, text=text, created_at=now,
                             recipient=Recipient(id=address[:100], name="sitrep", channel=channel,
                                                 address=address, lang=lang))
            result = adapter.send(n)  # type: ignore[attr-defined]
            results[address] = {"outcome": result.outcome.value, "attempts": attempts, "detail": result.detail or ""}
        if all(r["outcome"] in DELIVERED for r in results.values()):
            state = "delivered"
        elif any(r["outcome"] == SendOutcome.transient_failure.value and r["attempts"] < MAX_ATTEMPTS
                 for r in results.values()):
            state = "retry"  # take_over brings it back after RETRY_S, for the recipients still to reach
        else:
            state = "failed"
        attempt = max((int(r.get("attempts") or 1) for r in results.values()), default=1)
        settle(self.store.engine, sitrep_id, state, results, ActionDraft(
            incident_id=f"sitrep:{sitrep_id}", at=self.clock(), actor=ACTOR, kind=ActionKind.sitrep_delivered,
            details={"state": state, "results": results},
            idempotency_key=f"sitrep_delivered:{sitrep_id}:{attempt}"), claimed_at=now)
        return results
