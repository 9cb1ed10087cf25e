"""Approval reminders (issue 17): a release draft nobody has approved REMIND_AFTER_MIN after it was asked for (its
drafting, or the edit that made this revision) asks its approvers again, once per revision, so a public warning does
not sit unapproved while the plan's first-release deadline (60 min at the typhoon plan's grade I) runs out.

It runs on the escalation scheduler's sweep thread (streams/scheduler.py), at most every INTERVAL_S. Who is asked is
decided again at that moment (a new roster shift, a handover since the draft), never the drafter or last editor;
the intents and the `release_reminded` entry are written in one transaction by ReleaseService.remind, whose keys
(release, revision, event, person, channel) make a second worker's or a replayed sweep's reminder a no-op. The
minutes run PINGAN_ESCALATION_TIME_SCALE times faster, as the plan's own deadlines do.
"""

import logging
import time
from datetime import datetime, timedelta

from pingan.bootstrap import Services
from pingan.releases import ReleaseService
from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification
from pingan.store.releases import list_drafts

log = logging.getLogger(__name__)
INTERVAL_S = 10.0
REMIND_AFTER_MIN = 15.0


class ApprovalReminders:
    def __init__(self, services: Services, after_min: float = REMIND_AFTER_MIN,
                 interval_s: float = INTERVAL_S) -> None:
        self.services = services
        self.after = timedelta(minutes=after_min / services.settings.escalation_time_scale)
        self.interval_s = interval_s
        self.last = 0.0
        self.reminded = 0  # reminders this worker wrote (releases × revisions), since start
        self.done: set[tuple[str, int]] = set()  # (release, revision) reminded, by this worker or another

    def due(self, now: datetime | None = None, force: bool = False) -> list[Notification]:
        """Remind every draft asked for longer than `after`; the intents written now."""
        if not force and time.monotonic() - self.last < self.interval_s:
            return []
        self.last = time.monotonic()
        now = now or utcnow()
        try:
            waiting = [r for r in list_drafts(self.services.store) if (r.id, r.revision) not in self.done
                       and now - (r.edited_at or r.drafted_at) >= self.after]
        except Exception:  # the sweep's other work goes on
            log.exception("release drafts could not be read; approval reminders wait for the next sweep")
            return []
        if not waiting:
            return []
        settings = self.services.settings
        service = ReleaseService(self.services.store, self.services.plans, settings.cap_sender)
        out: list[Notification] = []
        for release in waiting:
            try:
                intents = service.remind(release.id, now)
            except Exception:  # one release that cannot be reminded must not hold the others
                log.exception("release %s: its approval reminder failed; tried again on the next sweep", release.id)
                continue
            self.done.add((release.id, release.revision))  # written now, or already: no write transaction again
            if intents:
                self.reminded += 1
                log.info("release %s revision %d: approvers reminded (%d message(s))", release.id, release.revision,
                         len(intents))
            out += intents
        return out
