"""One transaction for a whole batch of stage work (issue 15): the store as seen from inside it.

The triage and response agents take what is waiting on their topic and run the stage for every message of the batch
in one thread hop and one write transaction (streams/batches.py). `batch_tx(store)` opens that transaction and
yields a `Store` bound to it: every read and write of the store's classes (`Store`, `ResponseStore`, `MessageKeys`,
`DrillStore`…) made through the bound store runs on the batch's one connection, so

- a later message of the batch sees what an earlier one wrote (two reports with one key in one batch make one
  incident and a correlation, exactly as one after the other did);
- the batch commits once (one fsync on SQLite, one round trip on PostgreSQL) instead of once per write, and holds
  the chain lock (store/engine.write_tx) from its start to its commit;
- a failure anywhere rolls the whole batch back: nothing of it is stored, nothing is emitted, and the agent, which
  has not acknowledged the batch's offsets, runs it again whole (the idempotency keys make a replay harmless);
- the log's chain head is read once per batch: append_actions keeps it in the connection's `info` for as long as
  the transaction lasts (store/log.py). Its entries are inserted as they are appended, not held back to the commit:
  a stage may read the log inside the batch (the grade rules read the incident's `created`/`correlated` entries);
- what the stages ask once per message is read once per batch where it can be: whether triage has seen each event,
  the open incidents with the batch's dedup keys, whether the response has decided each incident, when triage
  decided each (`prefetch_*`, kept true as the batch writes), and each stored incident body is parsed once.

Inside a batch, a nested `begin()` or `connect()` is the batch's own transaction, not a new one, so code run in a
batch must not catch a database error and carry on (on PostgreSQL the transaction is aborted by then): the stages'
store paths do not; such an error fails the batch, which is retried whole.
"""

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, select

from pingan.schemas.action import Action
from pingan.schemas.events import IncidentEvent, TriageOutcome
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import IncidentState
from pingan.store.engine import write_tx
from pingan.store.ledger import CHUNK
from pingan.store.log import CHAIN_HEAD
from pingan.store.repository import Store
from pingan.store.tables import incidents, responses, triage_events


class _BatchEngine:
    """Stands in for the engine inside a batch: `connect()` and `begin()` give the batch's own connection, whose
    transaction the batch commits or rolls back. Everything else (dialect, url) is the real engine's."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._engine = conn.engine

    def connect(self) -> AbstractContextManager[Connection]:
        return nullcontext(self._conn)

    def begin(self) -> AbstractContextManager[Connection]:
        return nullcontext(self._conn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class ParsedIncidents:
    """A bounded LRU of stored incident bodies -> their parsed Incident, used from the triage and response threads."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[str, Incident] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, body: str) -> Incident | None:
        with self._lock:
            found = self._items.get(body)
            if found is not None:
                self._items.move_to_end(body)
            return found

    def put(self, body: str, incident: Incident) -> Incident:
        with self._lock:
            self._items[body] = incident
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return incident


class BatchStore(Store):
    """The store bound to one batch's transaction. The batch's presence checks (has triage seen this event? has the
    response decided this incident?) are read for the whole batch in one query each (`prefetch_*`), and kept true
    as the batch itself writes: the stages ask them once per message, and the answer for a fresh message, the
    common case, is "no" without a query. Anything not prefetched is asked of the database as before."""

    def __init__(self, store: Store, conn: Connection) -> None:  # no new engine: `engine` is the batch's connection
        self.__dict__.update(store.__dict__)
        self.engine = _BatchEngine(conn)  # type: ignore[assignment]
        self._conn = conn
        self._untriaged: set[str] = set()  # event ids with no triage row
        self._undecided: set[str] = set()  # incident ids with no response row
        self._triaged_at: dict[str, datetime] = {}  # event id -> when triage decided it
        # stored incident body -> the Incident it parses to, shared by every batch of this store (the worker's):
        # each report's candidates are the same recent open incidents, batch after batch
        self._parsed: ParsedIncidents = store.__dict__.setdefault("_parsed_incidents", ParsedIncidents())
        # dedup_key -> incident id -> (status, last report, stored body or Incident): the open incidents with the
        # batch's keys, read once and kept as the batch writes (apply_triage is triage's only write to incidents)
        self._open: dict[str, dict[str, tuple[str, datetime, str | Incident]]] = {}

    def prefetch_triage(self, event_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(event_ids))
        seen: set[str] = set()
        for i in range(0, len(wanted), CHUNK):
            seen.update(self._conn.scalars(select(triage_events.c.event_id)
                                           .where(triage_events.c.event_id.in_(wanted[i:i + CHUNK]))))
        self._untriaged = set(wanted) - seen

    def prefetch_open(self, dedup_keys: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(dedup_keys))
        self._open = {k: {} for k in wanted}
        for i in range(0, len(wanted), CHUNK):
            rows = self._conn.execute(
                select(incidents.c.id, incidents.c.dedup_key, incidents.c.status, incidents.c.last_report_at,
                       incidents.c.body)
                .where(and_(incidents.c.dedup_key.in_(wanted[i:i + CHUNK]), incidents.c.state != "closed")))
            for r in rows:
                self._open[r.dedup_key][r.id] = (r.status, r.last_report_at, r.body)

    def open_incident_for(self, dedup_key: str, status: str, since: datetime | None) -> Incident | None:
        known = self._open.get(dedup_key)
        if known is None:
            return super().open_incident_for(dedup_key, status, since)
        fitting = [(at, found) for st, at, found in known.values() if st == status and (since is None or at >= since)]
        if not fitting:
            return None
        found = max(fitting, key=lambda f: f[0])[1]  # the latest report, as the query's ORDER BY … DESC LIMIT 1
        return found if isinstance(found, Incident) else self._incident(found)

    def prefetch_responses(self, incident_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(incident_ids))
        seen: set[str] = set()
        for i in range(0, len(wanted), CHUNK):
            seen.update(self._conn.scalars(select(responses.c.incident_id)
                                           .where(responses.c.incident_id.in_(wanted[i:i + CHUNK]))))
        self._undecided = set(wanted) - seen

    def prefetch_triage_times(self, event_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(event_ids))
        for i in range(0, len(wanted), CHUNK):
            rows = self._conn.execute(select(triage_events.c.event_id, triage_events.c.at)
                                      .where(triage_events.c.event_id.in_(wanted[i:i + CHUNK])))
            self._triaged_at.update((r.event_id, r.at) for r in rows)

    def triaged_at(self, event_id: str) -> datetime | None:
        return self._triaged_at[event_id] if event_id in self._triaged_at else super().triaged_at(event_id)

    def was_ignored(self, event_id: str) -> bool:
        return False if event_id in self._untriaged else super().was_ignored(event_id)

    def triage_result(self, event_id: str) -> IncidentEvent | None:
        return None if event_id in self._untriaged else super().triage_result(event_id)

    def _triaged(self, conn: Connection, event_id: str) -> Row[Any] | None:
        return None if event_id in self._untriaged else super()._triaged(conn, event_id)

    def apply_triage(self, event_id: str, *args: Any, **kwargs: Any) -> tuple[IncidentEvent, list[Action]]:
        try:
            emitted, logged = super().apply_triage(event_id, *args, **kwargs)
        finally:  # from here on the event has its row (or the batch fails whole)
            self._untriaged.discard(event_id)
        if logged and emitted.outcome is not TriageOutcome.ignored:  # the incident row was written as `emitted`
            incident = emitted.incident
            for known in self._open.values():
                known.pop(incident.id, None)
            if incident.dedup_key in self._open and incident.state is not IncidentState.closed:
                self._open[incident.dedup_key][incident.id] = (
                    incident.status.value, incident.last_report_at or incident.received_at, incident)
        return emitted, logged

    def response_decided(self, incident_id: str) -> bool:
        return False if incident_id in self._undecided else super().response_decided(incident_id)

    def _responded(self, conn: Connection, incident_id: str) -> bool:
        return False if incident_id in self._undecided else super()._responded(conn, incident_id)

    def apply_response(self, incident_id: str, *args: Any, **kwargs: Any) -> list[Action]:
        try:
            return super().apply_response(incident_id, *args, **kwargs)
        finally:
            self._undecided.discard(incident_id)

    def _incident(self, body: str) -> Incident:
        """Each stored body parsed once, not once per batch: every report asks for the same recent incidents (the
        candidates a report from another source may join: up to 50 bodies a report, 16 % of the worker's GIL time
        in issue 15's profile when each batch parsed them again), and the decisions copy an incident, never change
        it. A body is its own key, so a changed incident is a new entry and never a stale one."""
        parsed = self._parsed.get(body)
        if parsed is None:
            parsed = self._parsed.put(body, super()._incident(body))
        return parsed


@contextmanager
def batch_tx(store: Store) -> Iterator[BatchStore]:
    """The whole block is one write transaction (committed when it ends, rolled back on an exception)."""
    with write_tx(store.engine) as conn:
        conn.info[CHAIN_HEAD] = None  # append_actions reads the head once, then keeps it here
        try:
            yield BatchStore(store, conn)
        finally:
            conn.info.pop(CHAIN_HEAD, None)  # the connection goes back to the pool: the next transaction reads anew
