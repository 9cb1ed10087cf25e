"""Public information releases in the store (issue 17): one row per release, the whole Release as JSON.

The workflow (core/releases.py) writes a release and its log entry in one transaction (`save` takes the caller's
connection inside `write_tx`); the readers here serve the console, the API and the CLI, and the channels that
deliver what is published: the CAP feed and the public page (`list_published`, `get_by_cap_identifier`), the SMS
broadcast and the webhook. Exercise and test releases are left out of `list_published` unless asked for, so nothing
public ever shows a drill.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.engine import RowMapping

from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification
from pingan.schemas.release import Release, ReleaseState
from pingan.schemas.taxonomy import IncidentStatus
from pingan.store.ledger import ledger_row
from pingan.store.repository import Store
from pingan.store.tables import notifications, releases


def _row(release: Release) -> dict[str, object]:
    return {
        "incident_id": release.incident_id, "state": release.state.value, "kind": release.kind.value,
        "status": release.status.value, "revision": release.revision, "drafted_at": release.drafted_at,
        "published_at": release.published_at, "cap_identifier": release.cap_identifier,
        "body": release.model_dump_json(),
    }


def _release(row: RowMapping) -> Release:
    return Release.model_validate_json(row["body"])


def save(conn: Connection, release: Release) -> None:
    """Insert or replace the release, inside the caller's transaction (the one that logs the step)."""
    exists = conn.execute(select(releases.c.id).where(releases.c.id == release.id)).first()
    if exists:
        conn.execute(releases.update().where(releases.c.id == release.id).values(**_row(release)))
    else:
        conn.execute(releases.insert().values(id=release.id, **_row(release)))


def add_intents(conn: Connection, intents: Sequence[Notification]) -> list[Notification]:
    """The step's notification intents (handlers/releases/asks.py) into the ledger, in the step's transaction; a key
    already there (a replayed step) is skipped, so each is sent once. The intents written."""
    if not intents:
        return []
    known = set(conn.scalars(select(notifications.c.idempotency_key).where(
        notifications.c.idempotency_key.in_([n.idempotency_key for n in intents]))))
    fresh = [n for n in intents if n.idempotency_key not in known]
    if fresh:
        now = utcnow()
        conn.execute(notifications.insert(), [ledger_row(n, now) for n in fresh])
    return fresh


def get_in(conn: Connection, release_id: str) -> Release | None:
    row = conn.execute(select(releases.c.body).where(releases.c.id == release_id)).mappings().first()
    return _release(row) if row else None


def for_incident_in(conn: Connection, incident_id: str) -> list[Release]:
    rows = conn.execute(select(releases.c.body).where(releases.c.incident_id == incident_id)
                        .order_by(releases.c.drafted_at, releases.c.id)).mappings()
    return [_release(r) for r in rows]


def list_drafts(store: Store) -> list[Release]:
    """Every release waiting for approval (state draft), oldest first: the approval reminders read them."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(releases.c.body).where(releases.c.state == ReleaseState.draft.value)
                            .order_by(releases.c.drafted_at)).all()
    return [Release.model_validate_json(r.body) for r in rows]


def get(store: Store, release_id: str) -> Release | None:
    with store.engine.connect() as conn:
        return get_in(conn, release_id)


def list_for_incident(store: Store, incident_id: str) -> list[Release]:
    """Every release of the incident, drafts and withdrawn ones included, in drafting order."""
    with store.engine.connect() as conn:
        return for_incident_in(conn, incident_id)


def list_published(store: Store, *, since: datetime | None = None, include_exercise: bool = False
                   ) -> list[Release]:
    """Published releases in publication order (oldest first), published at or after `since`; real ones only
    unless `include_exercise`."""
    query = select(releases.c.body).where(releases.c.state == ReleaseState.published.value)
    if since is not None:
        query = query.where(releases.c.published_at >= since)
    if not include_exercise:
        query = query.where(releases.c.status == IncidentStatus.actual.value)
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(releases.c.published_at, releases.c.id)).mappings()
        return [_release(r) for r in rows]


def get_by_cap_identifier(store: Store, identifier: str) -> Release | None:
    """The published release whose CAP identifier this is (set at publication), or None."""
    with store.engine.connect() as conn:
        row = conn.execute(select(releases.c.body).where(releases.c.cap_identifier == identifier)).mappings().first()
        return _release(row) if row else None
