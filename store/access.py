"""Which incidents a department liaison may see: those whose active plan level involves one of their departments,
read from the log's `plan_activated` entries (the latest one of each incident is its level in force)."""

import json
from collections.abc import Iterable

from sqlalchemy import Engine, select

from pingan.schemas.action import ActionKind
from pingan.store.tables import actions


def incidents_involving(engine: Engine, departments: Iterable[str]) -> set[str]:
    """Ids of the incidents whose latest plan activation lists any of `departments`."""
    wanted = set(departments)
    if not wanted:
        return set()
    latest: dict[str, list[str]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(actions.c.incident_id, actions.c.details)
                            .where(actions.c.kind == ActionKind.plan_activated.value).order_by(actions.c.seq))
        for incident_id, details in rows:
            try:
                latest[incident_id] = list(json.loads(details).get("departments") or [])
            except (ValueError, AttributeError):
                continue
    return {incident_id for incident_id, involved in latest.items() if wanted & set(involved)}
