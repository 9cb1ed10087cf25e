"""The worker's cache of parsed incident bodies (store/batch.py ParsedIncidents): bounded, least recently used out."""

from pingan.schemas.incident import Incident
from pingan.store.batch import ParsedIncidents


def incident(n: int) -> Incident:
    return Incident.model_validate({"id": f"INC-{n}", "dedup_key": f"k{n}", "received_at": "2026-12-05T00:00:00Z",
                                    "category": "accident_disaster", "subtype": "fire", "grade": "III",
                                    "title": f"火警 {n}"})


def test_a_body_is_parsed_once_and_the_least_recently_used_goes_first() -> None:
    cache = ParsedIncidents(size=2)
    bodies = [incident(n).model_dump_json() for n in range(3)]
    first = cache.put(bodies[0], incident(0))
    cache.put(bodies[1], incident(1))
    assert cache.get(bodies[0]) is first  # the same object: no second parse; and now the most recent
    cache.put(bodies[2], incident(2))  # over the bound: bodies[1], the least recently used, goes
    assert cache.get(bodies[1]) is None
    assert cache.get(bodies[0]) is first and cache.get(bodies[2]) is not None


def test_a_changed_incident_is_a_new_entry_never_a_stale_one() -> None:
    cache = ParsedIncidents()
    before = incident(1)
    after = before.model_copy(update={"report_count": 2})
    cache.put(before.model_dump_json(), before)
    assert cache.get(after.model_dump_json()) is None
