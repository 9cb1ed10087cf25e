"""The log writer: appends drafts to the hash chain inside the caller's write transaction."""

import json
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, RowMapping, select

from pingan.handlers.audit.log_chain import GENESIS_HASH, canonical_json, canonical_time, chain
from pingan.schemas.action import Action, ActionDraft
from pingan.store.tables import actions

# Key in Connection.info: while a batch's transaction runs (store/batch.py), the chain head after its last append,
# so a batch reads the head from the table once, not once per message. Absent outside a batch.
CHAIN_HEAD = "pingan_chain_head"


def append_actions(conn: Connection, drafts: Sequence[ActionDraft]) -> list[Action]:
    """Append in order. A draft whose idempotency key is already logged is skipped (replays are harmless).

    The caller must hold the chain lock (store.engine.write_tx)."""
    keys = [d.idempotency_key for d in drafts if d.idempotency_key]
    seen: set[str] = set()
    if keys:
        seen = set(conn.scalars(select(actions.c.idempotency_key).where(actions.c.idempotency_key.in_(keys))))
    fresh = []
    for draft in drafts:
        if draft.idempotency_key and draft.idempotency_key in seen:
            continue
        if draft.idempotency_key:
            seen.add(draft.idempotency_key)
        fresh.append(draft)
    if not fresh:
        return []
    cached = conn.info.get(CHAIN_HEAD)
    if cached is None:
        head = conn.execute(select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)).first()
        cached = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    entries = chain(cached[0], cached[1], fresh)
    conn.execute(actions.insert(), [_to_row(a) for a in entries])
    if CHAIN_HEAD in conn.info:  # inside a batch: we hold the chain lock until it commits, so this stays the head
        conn.info[CHAIN_HEAD] = (entries[-1].seq, entries[-1].hash)
    return entries


def _to_row(action: Action) -> dict[str, object]:
    return {
        "seq": action.seq,
        "incident_id": action.incident_id,
        "at": action.at if isinstance(action.at, str) else canonical_time(action.at),  # as hashed (log_chain)
        "actor": action.actor,
        "kind": action.kind.value,
        "details": canonical_json(action.details),
        "plan_id": action.plan_id,
        "plan_version": action.plan_version,
        "idempotency_key": action.idempotency_key,
        "prev_hash": action.prev_hash,
        "hash": action.hash,
    }


def row_to_action(row: RowMapping) -> Action:
    """The stored row as it is, unvalidated: `at` stays the stored text, so verify hashes what is there."""
    try:
        details = json.loads(row["details"])
    except ValueError:
        details = {"unparseable": row["details"]}
    return Action.model_construct(
        seq=row["seq"],
        incident_id=row["incident_id"],
        at=row["at"],
        actor=row["actor"],
        kind=row["kind"],
        details=details,
        plan_id=row["plan_id"],
        plan_version=row["plan_version"],
        idempotency_key=row["idempotency_key"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def timeline(engine: Engine, incident_id: str) -> list[Action]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(actions).where(actions.c.incident_id == incident_id).order_by(actions.c.seq)
        ).mappings()
        return [_validated(r) for r in rows]


def _validated(row: RowMapping) -> Action:
    fields = dict(row_to_action(row).__dict__)
    fields["at"] = datetime.fromisoformat(str(fields["at"]).replace("Z", "+00:00"))
    return Action.model_validate(fields)


def log_head(engine: Engine) -> tuple[int, str]:
    """The last entry's (seq, hash), or (0, the genesis hash) for an empty log."""
    with engine.connect() as conn:
        head = conn.execute(select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)).first()
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)


def iter_log(engine: Engine, batch: int = 5000, after: int = 0) -> Iterator[Action]:
    """The whole log in seq order (or what follows `after`), in batches so that a long log does not sit in memory."""
    while True:
        with engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(actions).where(actions.c.seq > after).order_by(actions.c.seq).limit(batch)
                ).mappings()
            )
        if not rows:
            return
        for row in rows:
            # model_construct keeps tampered values as they are, so verify sees exactly what is stored.
            yield row_to_action(row)
        after = rows[-1]["seq"]


def follow_log(engine: Engine, follow: bool = True, poll_s: float = 0.2,
               idle_timeout_s: float | None = None) -> Iterator[Action]:
    """The log from its first entry, then (with `follow`) each new entry as it is committed: what `pingan tail
    actions` prints. The store is the log's one copy; the worker no longer produces each entry to a topic."""
    import time

    after, idle_since = 0, time.monotonic()
    while True:
        for action in iter_log(engine, after=after):
            after, idle_since = action.seq, time.monotonic()
            yield action
        if not follow or (idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s):
            return
        time.sleep(poll_s)
