"""Issued situation reports (态势研判, issue 17): one row per period, written with its `sitrep_issued` log entry.

Once per period, whoever runs it: `issue` checks for the period's row and inserts it inside the log's write
transaction, which holds the chain lock (SQLite's write lock, PostgreSQL's advisory lock), so of two workers at the
same minute one inserts and the other finds the row. The one that inserted delivers; a delivery left `sending` (its
worker died) is taken over by `take_over` after a while, one taker per row, and sent again with the same idempotency
keys (e-mail Message-ID, webhook Idempotency-Key), so a receiver can drop the repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.action import ActionDraft
from pingan.store.engine import write_tx
from pingan.store.log import append_actions
from pingan.store.tables import sitreps

SUMMARY_COLUMNS = (sitreps.c.id, sitreps.c.kind, sitreps.c.period_start, sitreps.c.period_end,
                   sitreps.c.generated_at, sitreps.c.state, sitreps.c.lang, sitreps.c.delivery)


@dataclass(frozen=True)
class IssuedSitrep:
    id: str
    kind: str
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    state: str
    lang: str
    delivery: dict[str, Any]
    body: str | None = None  # the Sitrep JSON, when read whole
    html: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(), "generated_at": self.generated_at.isoformat(),
                "state": self.state, "lang": self.lang, "delivery": self.delivery}


def _of(row: Any) -> IssuedSitrep:
    m = row._mapping
    return IssuedSitrep(id=m["id"], kind=m["kind"], period_start=m["period_start"], period_end=m["period_end"],
                        generated_at=m["generated_at"], state=m["state"], lang=m["lang"],
                        delivery=json.loads(m["delivery"] or "{}"), body=m.get("body"), html=m.get("html"))


def issue(engine: Engine, *, sitrep_id: str, kind: str, period_start: datetime, period_end: datetime,
          generated_at: datetime, state: str, lang: str, body: str, html: str, draft: ActionDraft) -> bool:
    """Store the report and log it, unless the period's report is already there. True when this call issued it."""
    try:
        with write_tx(engine) as conn:
            if conn.scalar(select(func.count()).where(sitreps.c.id == sitrep_id)):
                return False
            conn.execute(sitreps.insert().values(
                id=sitrep_id, kind=kind, period_start=period_start, period_end=period_end,
                generated_at=generated_at, state=state, claimed_at=generated_at, delivery="{}", lang=lang,
                body=body, html=html))
            append_actions(conn, [draft])
    except IntegrityError:  # another process inserted it between our look and our insert (never under the lock)
        return False
    return True


def take_over(engine: Engine, now: datetime, stale_s: float, retry_s: float) -> list[str]:
    """Deliveries left `sending` longer than stale_s, and those to `retry` whose last attempt is retry_s old: claimed
    again (now), each by one caller only."""
    due = or_(and_(sitreps.c.state == "sending", sitreps.c.claimed_at < now - timedelta(seconds=stale_s)),
              and_(sitreps.c.state == "retry", sitreps.c.claimed_at < now - timedelta(seconds=retry_s)))
    with engine.connect() as conn:
        ids = list(conn.scalars(select(sitreps.c.id).where(due)))
    taken = []
    for sitrep_id in ids:
        with engine.begin() as conn:
            if conn.execute(update(sitreps).where(and_(sitreps.c.id == sitrep_id, due))
                            .values(claimed_at=now)).rowcount == 1:
                taken.append(sitrep_id)
    return taken


def settle(engine: Engine, sitrep_id: str, state: str, delivery: dict[str, Any], draft: ActionDraft,
           claimed_at: datetime) -> None:
    """The attempt's results; `claimed_at` starts a `retry`'s wait."""
    with write_tx(engine) as conn:
        conn.execute(update(sitreps).where(sitreps.c.id == sitrep_id).values(
            state=state, claimed_at=claimed_at, delivery=json.dumps(delivery, ensure_ascii=False, sort_keys=True)))
        append_actions(conn, [draft])


def list_sitreps(engine: Engine, limit: int = 50, offset: int = 0) -> tuple[list[IssuedSitrep], int]:
    """Newest period first, without the bodies."""
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(sitreps)) or 0
        rows = conn.execute(select(*SUMMARY_COLUMNS).order_by(sitreps.c.period_start.desc(), sitreps.c.id)
                            .limit(limit).offset(offset)).all()
    return [_of(r) for r in rows], int(total)


def get_sitrep(engine: Engine, sitrep_id: str) -> IssuedSitrep | None:
    with engine.connect() as conn:
        row = conn.execute(select(sitreps).where(sitreps.c.id == sitrep_id)).first()
    return _of(row) if row is not None else None
