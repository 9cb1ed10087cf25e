"""One entry of the tamper-evident command-chain log."""

from enum import StrEnum
from typing import Any

from pydantic import Field

from pingan.schemas.common import Model, UtcDatetime


class ActionKind(StrEnum):
    created = "created"
    correlated = "correlated"
    plan_activated = "plan_activated"
    no_plan = "no_plan"
    updated = "updated"
    grade_changed = "grade_changed"
    notified = "notified"
    delivered = "delivered"
    failed = "failed"
    acknowledged = "acknowledged"
    escalated = "escalated"
    handed_over = "handed_over"
    closed = "closed"
    confirmed = "confirmed"  # a roll-call (点名) confirmation
    roll_call = "roll_call"  # the roll-call check: who confirmed, who is missing
    task_done = "task_done"  # a plan task (向市应急局报告…) reported done, scored against its deadline
    refused = "refused"  # a command from someone not in the incident's chain, logged and declined
    merged = "merged"  # the duty officer merged another incident of the same event into this one
    split = "split"  # the duty officer split a report out of this incident into one of its own
    ignored = "ignored"  # an update or close that found nothing to apply to; incident_id is the id it was accepted with
    area_checked = "area_checked"  # the district check: inside or outside the district's areas, and what matched
    plan_approved = "plan_approved"  # incident_id is "plan:<id>" for entries about a plan, not an incident
    regraded = "regraded"  # a person changed the grade (the update goes through triage: grade_changed follows)
    # People and credentials (issue 13): incident_id is "user:<person id>" for these entries.
    user_added = "user_added"
    user_changed = "user_changed"  # roles, departments or language
    password_changed = "password_changed"
    user_disabled = "user_disabled"
    token_created = "token_created"
    token_revoked = "token_revoked"
    signed_in = "signed_in"
    signed_out = "signed_out"
    sign_in_failed = "sign_in_failed"  # a wrong password, or a person without an account
    second_factor_sent = "second_factor_sent"
    second_factor_passed = "second_factor_passed"
    second_factor_failed = "second_factor_failed"  # a wrong, used or expired code
    account_locked = "account_locked"  # too many failures in a row: no sign-in until the lock ends
    note = "note"  # a person's note on an incident (the console's "add a note")
    shift_handover = "shift_handover"  # 交接班: incident_id is "shift:<date>", the open incidents in the details
    # Public information releases (issue 17): incident_id is the release's incident, details.release its id.
    release_drafted = "release_drafted"
    release_edited = "release_edited"
    release_approved = "release_approved"
    release_rejected = "release_rejected"
    release_published = "release_published"
    release_withdrawn = "release_withdrawn"
    release_reminded = "release_reminded"  # a draft still unapproved: its approvers asked again, once per revision
    # The release's SMS broadcast and webhooks were planned: how many, to which areas. The public's numbers stay out
    # of the log (the ledger has each message); a drill's participants and the webhooks are logged per send.
    release_broadcast = "release_broadcast"
    # Situation reports (态势研判, issue 17): incident_id is "sitrep:<report id>" for these entries.
    sitrep_issued = "sitrep_issued"  # the daily report was generated and stored (once per day, whoever runs it)
    sitrep_delivered = "sitrep_delivered"  # what each recipient's e-mail or webhook answered


class ActionDraft(Model):
    """An action before the log writer has given it a place in the chain."""

    incident_id: str
    at: UtcDatetime
    actor: str = Field(min_length=1, max_length=200, description="Who did it: a person id, or system:<component>")
    kind: ActionKind
    details: dict[str, Any] = Field(default_factory=dict)
    plan_id: str | None = None
    plan_version: int | None = None
    idempotency_key: str | None = Field(
        default=None, description="Appending twice with one key writes one entry (replays are harmless)"
    )


class Action(ActionDraft):
    seq: int = Field(ge=1)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
