"""CAP reference chains (issue #12): a follow-up carries the key of every message it names, and triage says why it
ignores one that names nothing it knows. Real services name the latest message of a chain, not the first."""

from datetime import timedelta

import pytest

from pingan.handlers.incidents.triage import REFERENCES_UNKNOWN, triage
from pingan.schemas.action import ActionKind
from pingan.schemas.adapters.cap import cap_dedup_key, parse_cap
from pingan.schemas.common import utcnow
from pingan.schemas.events import RawEvent, RawKind, TriageOutcome
from pingan.schemas.taxonomy import IncidentState
from tests.fixtures.cap_chain import CAP_DIR, SENDER, chain_message, reference

pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"CAP samples not found at {CAP_DIR}")

A = ("TW-ALERT-1", "2026-08-01T08:00:00+08:00")
U1 = ("TW-UPDATE-1", "2026-08-01T09:00:00+08:00")
U2 = ("TW-UPDATE-2", "2026-08-01T10:00:00+08:00")
WINDOW = timedelta(hours=1)


def one(data: bytes):  # type: ignore[no-untyped-def]
    [item] = parse_cap(data)
    return item


def raw(data: bytes, event_id: str = "ev1") -> RawEvent:
    item = one(data)
    return RawEvent(event_id=event_id, kind=item.kind, proposed_incident_id=f"INC-{event_id}", received_at=utcnow(),
                    report=item.report, message_key=item.message_key, references=item.references)


def test_every_message_carries_its_own_key_and_one_partition_per_sender() -> None:
    alert = one(chain_message(*A))
    assert alert.message_key == cap_dedup_key(SENDER, A[0]) == alert.report.dedup_key
    assert alert.references == []
    update = one(chain_message(*U1, msg_type="Update", refs=(reference(*A),)))
    assert update.message_key == cap_dedup_key(SENDER, U1[0])
    # Same sender, same partition of incidents.raw: the Update is triaged after the Alert it names.
    assert alert.partition_key == update.partition_key == f"cap:{SENDER}"


def test_a_follow_up_carries_every_reference_in_order() -> None:
    cancel = one(chain_message("TW-CANCEL", "2026-08-01T11:00:00+08:00", msg_type="Cancel",
                               refs=(reference(*A), reference(*U1), reference(*U2))))
    assert cancel.kind is RawKind.close
    assert cancel.references == [cap_dedup_key(SENDER, i) for i, _ in (A, U1, U2)]
    # Its dedup key stays its first reference's: an incident opened before message keys were kept is found by it.
    assert cancel.report.dedup_key == cap_dedup_key(SENDER, A[0])


def test_a_reference_named_twice_is_carried_once() -> None:
    update = one(chain_message(*U2, msg_type="Update", refs=(reference(*U1), reference(U1[0], A[1]))))
    assert update.references == [cap_dedup_key(SENDER, U1[0])]


def test_a_cancel_naming_no_known_message_is_ignored_and_says_so() -> None:
    decision = triage(raw(chain_message("C", U2[1], msg_type="Cancel", refs=(reference("NEVER-SEEN", A[1]),))),
                      None, WINDOW)
    assert decision.outcome is TriageOutcome.ignored
    [entry] = decision.actions
    assert entry.kind is ActionKind.ignored and entry.details["reason"] == REFERENCES_UNKNOWN
    assert entry.incident_id == "INC-ev1"


def test_a_cancel_of_a_closed_incident_names_it() -> None:
    alert = raw(chain_message(*A), "ev0")
    created = triage(alert, None, WINDOW).incident
    closed = created.model_copy(update={"state": IncidentState.closed})
    decision = triage(raw(chain_message("C", U2[1], msg_type="Cancel", refs=(reference(*A),)), "ev2"), closed,
                      WINDOW)
    assert decision.outcome is TriageOutcome.ignored
    assert decision.actions[0].details["reason"] == f"the incident it refers to, {created.id}, is already closed"


def test_an_update_naming_no_known_message_opens_an_incident_rather_than_stay_silent() -> None:
    decision = triage(raw(chain_message(*U2, msg_type="Update", refs=(reference("NEVER-SEEN", A[1]),))), None,
                      WINDOW)
    assert decision.outcome is TriageOutcome.created
    assert REFERENCES_UNKNOWN in decision.actions[0].details["reason"]
