"""The dead-man's switch in the store: beats committed to the outbox, stamped by each stage, read back as ages;
and the watchdog's state, shared by every API process so that an outage gets one alert however many watch.

Beats never touch incidents, the log or the ledger. A beat's outbox row is deleted once triage has it (so
recovery stops re-publishing it and the outbox does not grow), heartbeat rows older than a day are pruned
except the newest arrival of each partition, and beats still unpublished after ten intervals are dropped: a
later beat is already queued behind them, and they would prove nothing new.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from pingan.handlers.incidents.heartbeat import BEAT_PREFIX, MonitorState, PartitionTrack, Progress, beat_event
from pingan.store.engine import write_tx
from pingan.store.repository import Store
from pingan.store.tables import UtcDateTime, heartbeat_monitor, heartbeats, outbox

MONITOR = "pipeline"
ASSIGNED = "worker-assigned"  # when a worker last got its partitions: /readyz waits for a round trip after it
STAMPS = {"triaged": heartbeats.c.triaged_at, "responded": heartbeats.c.responded_at,
          "arrived": heartbeats.c.arrived_at}
_BEATS_IN_OUTBOX = outbox.c.event_id.like(BEAT_PREFIX + "%")


class HeartbeatStore:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self._ensured = False

    # ---- the watchdog's side ---------------------------------------------------------------------------------

    def send_if_due(self, now: datetime, interval_s: float, keys: list[str], raw_topic: str) -> int:
        """One beat per partition key into the outbox, unless a watchdog (this or another API process) sent a
        round less than about an interval ago. Returns how many beats were committed."""
        self._ensure(now)
        with self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock below
            last = conn.scalar(select(heartbeat_monitor.c.last_sent_at)
                               .where(heartbeat_monitor.c.name == MONITOR).with_for_update())
            if last is not None and (now - last).total_seconds() < interval_s * 0.9:
                return 0
            _insert_beats(conn, now, dict(enumerate(keys)), raw_topic)
            conn.execute(update(heartbeat_monitor).where(heartbeat_monitor.c.name == MONITOR)
                         .values(last_sent_at=now))
        return len(keys)

    # ---- readiness (/readyz): the worker holds its partitions and a beat made the round trip since --------------

    def mark_assigned(self, now: datetime) -> None:
        """A worker got its partitions now: readiness starts over until beats sent from now on arrive."""
        mark = update(heartbeat_monitor).where(heartbeat_monitor.c.name == ASSIGNED).values(changed_at=now)
        with self.engine.begin() as conn:
            if conn.execute(mark).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(heartbeat_monitor.insert().values(name=ASSIGNED, state="assigned", changed_at=now,
                                                               last_sent_at=None))
        except IntegrityError:  # another worker inserted it between our update and insert
            with self.engine.begin() as conn:
                conn.execute(mark)

    def send_readiness_beats(self, now: datetime, keys: list[str], raw_topic: str) -> int:
        """Beats for the partitions that have not made the round trip since the assignment, whatever the
        heartbeat's interval (a readiness probe, not the dead-man's switch). Returns how many were committed."""
        with self.engine.begin() as conn:
            assigned = conn.scalar(select(heartbeat_monitor.c.changed_at).where(heartbeat_monitor.c.name == ASSIGNED))
            if assigned is None:
                return 0
            done = _arrived_since(conn, assigned)
            missing = {p: key for p, key in enumerate(keys) if p not in done}
            _insert_beats(conn, now, missing, raw_topic)
        return len(missing)

    def readiness(self, partitions: int) -> tuple[bool, str]:
        """(ready, why): a worker has been assigned its partitions, and a beat on every raw partition sent since
        then went through triage, response and the notifier."""
        with self.engine.connect() as conn:
            assigned = conn.scalar(select(heartbeat_monitor.c.changed_at).where(heartbeat_monitor.c.name == ASSIGNED))
            if assigned is None:
                return False, "no worker holds the pipeline's partitions yet"
            done = _arrived_since(conn, assigned)
        waiting = sorted(set(range(partitions)) - done)
        if waiting:
            return False, (f"worker assigned at {assigned.isoformat(timespec='seconds')}; waiting for a heartbeat "
                           f"round trip on partition(s) {', '.join(map(str, waiting))}")
        return True, f"worker assigned at {assigned.isoformat(timespec='seconds')}; heartbeats made the round trip"

    def tracks(self, partitions: int) -> list[PartitionTrack]:
        completed = func.max(case((heartbeats.c.arrived_at.is_not(None), heartbeats.c.sent_at)), type_=UtcDateTime())
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(heartbeats.c.partition_no, completed, func.min(heartbeats.c.sent_at, type_=UtcDateTime()))
                .where(heartbeats.c.partition_no < partitions)  # a partition count changed since: ignore the old
                .group_by(heartbeats.c.partition_no)
            ).all()
        return [PartitionTrack(r[0], r[1], r[2]) for r in rows]

    def progress(self) -> Progress:
        with self.engine.connect() as conn:
            row = conn.execute(select(*(func.max(c, type_=UtcDateTime()) for c in (
                heartbeats.c.sent_at, heartbeats.c.triaged_at, heartbeats.c.responded_at, heartbeats.c.arrived_at)))
            ).one()
            waiting = conn.scalar(select(func.count()).where(and_(_BEATS_IN_OUTBOX, outbox.c.published_at.is_(None))))
        return Progress(row[0], row[1], row[2], row[3], int(waiting or 0))

    def state(self, now: datetime) -> tuple[MonitorState, datetime]:
        self._ensure(now)
        with self.engine.connect() as conn:
            row = conn.execute(select(heartbeat_monitor.c.state, heartbeat_monitor.c.changed_at)
                               .where(heartbeat_monitor.c.name == MONITOR)).one()
        return MonitorState(row.state), row.changed_at

    def transition(self, expected: MonitorState, new: MonitorState, now: datetime) -> bool:
        """Compare-and-set: only the process whose update wins sends the alert or the recovery notice."""
        with self.engine.begin() as conn:
            result = conn.execute(update(heartbeat_monitor)
                                  .where(and_(heartbeat_monitor.c.name == MONITOR,
                                              heartbeat_monitor.c.state == expected.value))
                                  .values(state=new.value, changed_at=now))
        return result.rowcount == 1

    def prune(self, now: datetime, keep: timedelta, unpublished_keep: timedelta) -> None:
        with self.engine.begin() as conn:
            newest = [conn.scalar(select(heartbeats.c.beat_id)
                                  .where(and_(heartbeats.c.partition_no == p, heartbeats.c.arrived_at.is_not(None)))
                                  .order_by(heartbeats.c.sent_at.desc()).limit(1))
                      for p in conn.scalars(select(heartbeats.c.partition_no).distinct()).all()]
            conn.execute(delete(heartbeats).where(and_(heartbeats.c.sent_at < now - keep,
                                                       heartbeats.c.beat_id.not_in([b for b in newest if b]))))
            conn.execute(delete(outbox).where(and_(_BEATS_IN_OUTBOX, outbox.c.accepted_at < now - unpublished_keep)))

    def _ensure(self, now: datetime) -> None:
        if self._ensured:
            return
        try:
            with self.engine.begin() as conn:
                _insert_state(conn, now)
        except IntegrityError:
            pass  # another process created it first
        self._ensured = True

    # ---- the pipeline's side ---------------------------------------------------------------------------------

    def stamp(self, beat_id: str, stage: str, at: datetime) -> bool:
        """The beat reached `stage` (triaged, responded, arrived). Idempotent: a replay keeps the first stamp.
        Under the chain lock, like every stage's write, so a pipeline stuck on that lock stops beats too."""
        column = STAMPS[stage]
        with write_tx(self.engine) as conn:
            result = conn.execute(update(heartbeats)
                                  .where(and_(heartbeats.c.beat_id == beat_id, column.is_(None)))
                                  .values({column.name: at}))
            if stage == "triaged":
                conn.execute(delete(outbox).where(outbox.c.event_id == beat_id))
        return result.rowcount == 1


def _insert_beats(conn: Connection, now: datetime, keys: dict[int, str], raw_topic: str) -> None:
    for partition, key in keys.items():
        beat_id = BEAT_PREFIX + uuid.uuid4().hex
        conn.execute(outbox.insert().values(
            event_id=beat_id, proposed_incident_id=key, source_key=None, topic=raw_topic, key=key,
            payload=beat_event(beat_id, key, now).model_dump_json(), accepted_at=now))
        conn.execute(heartbeats.insert().values(beat_id=beat_id, partition_no=partition, sent_at=now))


def _arrived_since(conn: Connection, since: datetime) -> set[int]:
    return set(conn.scalars(select(heartbeats.c.partition_no).distinct().where(and_(
        heartbeats.c.sent_at >= since, heartbeats.c.arrived_at.is_not(None)))).all())


def _insert_state(conn: Connection, now: datetime) -> None:
    exists = conn.scalar(select(func.count()).where(heartbeat_monitor.c.name == MONITOR))
    if not exists:
        conn.execute(heartbeat_monitor.insert().values(name=MONITOR, state=MonitorState.starting.value,
                                                       changed_at=now, last_sent_at=None))
