"""Commands that change nothing say so instead of logging again (handlers/incidents/escalation.decide_command)."""

from datetime import UTC, datetime

import pytest

from pingan.handlers.incidents.escalation import Command, CommandRefused, decide_command
from pingan.schemas.incident import Incident
from pingan.schemas.taxonomy import IncidentState

T = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def incident(state: IncidentState) -> Incident:
    return Incident(id="INC-1", category="accident_disaster", subtype="fire", grade="III", title="起火",
                    dedup_key="k", received_at=T, state=state)


def test_a_second_acknowledgement_is_a_no_op_answered_as_such() -> None:
    first = decide_command(incident(IncidentState.open), Command.acknowledge, "wang-fang", T, {})
    assert first.actions and first.note is None
    again = decide_command(incident(IncidentState.acknowledged), Command.acknowledge, "li-wei", T, {})
    assert again.actions == [] and again.cancel is None and again.note == "incident INC-1 is already acknowledged"


def test_escalate_needs_a_step_left_to_fire() -> None:
    acked = incident(IncidentState.acknowledged)
    assert decide_command(acked, Command.escalate, "wang-fang", T, {}, steps_pending=True).fire_next_step
    with pytest.raises(CommandRefused, match="nothing left to escalate to in INC-1"):
        decide_command(acked, Command.escalate, "wang-fang", T, {}, steps_pending=False)
