"""Drill runs in the store: registered by `pingan drill run`, read by the notifier's sandbox rule and, for the run's
clock, by every time rule of its exercise incidents (deadlines, grade-raise and correlation windows).

A drill's incidents carry their run id (the `drill_run` label the drill runner sets at intake); the run's speed is
given when a drill coordinator registers it (POST /v1/drills, drills.start), so only a person allowed to run drills
sets a clock, and only an exercise or test incident ever reads one: an actual incident keeps real time whatever its
labels say.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.common import utcnow
from pingan.schemas.incident import IncidentReport
from pingan.schemas.taxonomy import IncidentStatus
from pingan.store.repository import Store
from pingan.store.tables import drill_clocks, drill_runs

# (database URL, run id) -> the run's speed. A run's clock never changes once registered, so a cached value stays
# right; an unknown run is not cached (its registration may come in a moment).
_SCALES: dict[tuple[str, str], float] = {}
_SCALES_MAX = 10_000


@dataclass(frozen=True)
class DrillRunRow:
    run_id: str
    title: str
    live: bool
    participants: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None
    time_scale: float | None = None  # plan minutes per real minute; None: the stack's own


class DrillStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def register(self, run_id: str, title: str, live: bool, participants: list[str],
                 time_scale: float | None = None) -> DrillRunRow:
        """Once per run id: a second registration returns the first (a retried request changes nothing)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(drill_runs.insert().values(run_id=run_id, title=title, live=int(live),
                                                        participants=json.dumps(sorted(set(participants))),
                                                        started_at=utcnow(), ended_at=None))
                if time_scale is not None:
                    conn.execute(drill_clocks.insert().values(run_id=run_id, time_scale=float(time_scale)))
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
                           row.started_at, row.ended_at, self.time_scale(run_id))

    def time_scale(self, run_id: str) -> float | None:
        """The run's speed (plan minutes per real minute), or None when it was registered without one."""
        key = (str(self.engine.url), run_id)
        if key in _SCALES:
            return _SCALES[key]
        with self.engine.connect() as conn:
            scale = conn.scalar(select(drill_clocks.c.time_scale).where(drill_clocks.c.run_id == run_id))
        if scale is None:
            return None
        if len(_SCALES) >= _SCALES_MAX:
            _SCALES.clear()
        _SCALES[key] = float(scale)
        return float(scale)

    def clock_of(self, report: IncidentReport, default: float = 1.0) -> float:
        """The time scale an incident (or a report about to become or join one) runs at: its drill run's speed for
        an exercise or test of a run registered with one; `default` otherwise (1, real time, for every actual
        incident; the deadlines pass PINGAN_ESCALATION_TIME_SCALE, which tests use to fast-forward a stack)."""
        run = report.labels.get("drill_run")
        if report.status is IncidentStatus.actual or not run:
            return default
        return self.time_scale(run) or default

    def live_participants(self, run_id: str | None) -> frozenset[str] | None:
        """Who this run's exercise traffic may really reach; None: sandbox only (unknown, not live, or ended)."""
        run = self.get(run_id) if run_id else None
        if run is None or not run.live or run.ended_at is not None:
            return None
        return frozenset(run.participants)
