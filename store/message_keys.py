"""Which incident each CAP message was applied to, so that a follow-up naming any message of a chain finds it.

Real warning services name the latest message of a chain in <references>, not the first: an Alert, then an Update
naming the Alert, then a Cancel naming only that Update. Triage records every message key it applies
(`remember`, inside its own transaction) and looks a follow-up's candidate up by all the keys it names
(`MessageKeys.incident_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, and_, select

from pingan.schemas.common import utcnow
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import IncidentState
from pingan.store.tables import incidents, message_keys

if TYPE_CHECKING:  # store/incidents.py calls remember() inside triage's transaction: no import of the facade here
    from pingan.store.repository import Store


def remember(conn: Connection, keys: Sequence[str], incident_id: str) -> None:
    """Record `keys` as applied to `incident_id`; a key already recorded keeps its first incident (a replay, or the
    same message sent again with another <sent>)."""
    wanted = list(dict.fromkeys(k for k in keys if k))
    if not wanted:
        return
    known = set(conn.scalars(select(message_keys.c.key).where(message_keys.c.key.in_(wanted))).all())
    rows = [{"key": k, "incident_id": incident_id, "at": utcnow()} for k in wanted if k not in known]
    if rows:
        conn.execute(message_keys.insert(), rows)


class MessageKeys:
    """Reads of the message_keys table (triage's candidate lookup for a follow-up)."""

    def __init__(self, store: Store) -> None:
        self.engine: Engine = store.engine

    def incident_for(self, keys: Sequence[str], status: str) -> Incident | None:
        """The incident of any message named in `keys`, with this status (an exercise never touches an actual one).

        An open incident wins over a closed one, and among several the one named latest in `keys` (CAP lists the
        references oldest first). A closed one is returned when no open one is named, so triage can say the
        message refers to an incident already closed. Incidents opened before message keys were stored are found
        by their dedup key, which is their Alert's own key.
        """
        wanted = list(dict.fromkeys(k for k in keys if k))
        if not wanted:
            return None
        with self.engine.connect() as conn:
            by_message = conn.execute(
                select(message_keys.c.key, incidents.c.body)
                .join(incidents, incidents.c.id == message_keys.c.incident_id)
                .where(and_(message_keys.c.key.in_(wanted), incidents.c.status == status))
            ).all()
            by_dedup = conn.execute(
                select(incidents.c.dedup_key, incidents.c.body)
                .where(and_(incidents.c.dedup_key.in_(wanted), incidents.c.status == status))
                .order_by(incidents.c.last_report_at)
            ).all()
        found: dict[str, list[Incident]] = {}
        for key, body in [*by_message, *by_dedup]:
            found.setdefault(key, []).append(Incident.model_validate_json(body))
        named = [i for k in reversed(wanted) for i in reversed(found.get(k, []))]
        return next((i for i in named if i.state is not IncidentState.closed), named[0] if named else None)
