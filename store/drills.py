"""Drill runs in the store: registered by `pingan drill run`, read by the notifier's sandbox rule."""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.common import utcnow
from pingan.store.repository import Store
from pingan.store.tables import drill_runs


@dataclass(frozen=True)
class DrillRunRow:
    run_id: str
    title: str
    live: bool
    participants: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None


class DrillStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def register(self, run_id: str, title: str, live: bool, participants: list[str]) -> DrillRunRow:
        """Once per run id: a second registration returns the first (a retried request changes nothing)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(drill_runs.insert().values(run_id=run_id, title=title, live=int(live),
                                                        participants=json.dumps(sorted(set(participants))),
                                                        started_at=utcnow(), ended_at=None))
        except IntegrityError:
            pass
        found = self.get(run_id)
        assert found is not None
        return found

    def end(self, run_id: str) -> DrillRunRow | None:
        with self.engine.begin() as conn:
            conn.execute(update(drill_runs).where(drill_runs.c.run_id == run_id, drill_runs.c.ended_at.is_(None))
                         .values(ended_at=utcnow()))
        return self.get(run_id)

    def get(self, run_id: str) -> DrillRunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(drill_runs).where(drill_runs.c.run_id == run_id)).first()
        if row is None:
            return None
        return DrillRunRow(row.run_id, row.title, bool(row.live), tuple(json.loads(row.participants)),
                           row.started_at, row.ended_at)

    def live_participants(self, run_id: str | None) -> frozenset[str] | None:
        """Who this run's exercise traffic may really reach; None: sandbox only (unknown, not live, or ended)."""
        run = self.get(run_id) if run_id else None
        if run is None or not run.live or run.ended_at is not None:
            return None
        return frozenset(run.participants)
