"""Who may do what (handlers/access): the permission table's rules, the README's copy of it, lockout, session
expiry, masking and a liaison's scope. No I/O."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pingan.handlers.access.identity import (
    LockPolicy,
    after_failure,
    code_digest,
    code_matches,
    effective_roles,
    involved_departments,
    locked,
    mask_phone,
    mask_phones,
    needs_second_factor,
    parse_roles,
    safe_next,
    second_factor_fresh,
    session_expired,
    token_roles_refusal,
)
from pingan.handlers.access.permissions import (
    PERMISSIONS,
    SECOND_FACTOR,
    Permission,
    Role,
    allowed,
    scoped,
    sees_incident,
)
from pingan.handlers.access.table import permission_table_markdown

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def test_the_readme_shows_the_permission_table_of_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert permission_table_markdown() in readme, (
        "README.md's 'Who may do what' table differs from handlers/access/permissions.py; paste this:\n"
        + permission_table_markdown())


def test_the_rules_the_issue_asks_for() -> None:
    # Only a drill coordinator (and an admin, who holds everything) starts a drill or makes one live.
    assert {r for r in Role if allowed([r], Permission.drills_start)} == {Role.drill_coordinator, Role.admin}
    assert {r for r in Role if allowed([r], Permission.drills_live)} == {Role.drill_coordinator, Role.admin}
    # Close and regrade: the commander and the admin, with a second factor.
    assert {r for r in Role if allowed([r], Permission.close)} == {Role.commander, Role.admin}
    assert {Permission.close, Permission.regrade} == SECOND_FACTOR
    assert needs_second_factor([Role.commander]) and not needs_second_factor([Role.duty_officer])
    # A viewer reads and never acts; phone numbers only to those who respond.
    assert not any(p.value.startswith("incidents.") and p is not Permission.incidents_read
                   for p in PERMISSIONS[Role.viewer])
    assert not allowed([Role.viewer], Permission.phones_read) and allowed([Role.duty_officer], Permission.phones_read)
    assert PERMISSIONS[Role.admin] == frozenset(Permission)


def test_a_liaison_sees_only_incidents_of_their_departments() -> None:
    assert scoped([Role.department_liaison]) and not scoped([Role.department_liaison, Role.viewer])
    assert sees_incident([Role.department_liaison], ["fire"], ["emergency", "fire"])
    assert not sees_incident([Role.department_liaison], ["fire"], ["health", "cdc"])
    assert not sees_incident([Role.department_liaison], ["fire"], [])  # no plan yet: not theirs yet
    assert sees_incident([Role.viewer], [], ["health"])


def test_involved_departments_are_the_latest_activation() -> None:
    timeline = [{"kind": "created", "details": {}},
                {"kind": "plan_activated", "details": {"departments": ["emergency", "fire"]}},
                {"kind": "grade_changed", "details": {}},
                {"kind": "plan_activated", "details": {"departments": ["emergency", "fire", "health"]}}]
    assert involved_departments(timeline) == {"emergency", "fire", "health"}
    assert involved_departments([]) == frozenset()


def test_lockout_after_n_failures_in_a_row() -> None:
    policy = LockPolicy(max_failures=3, lock_s=600)
    first = after_failure(0, T0, policy)
    second = after_failure(first.failed_attempts, T0, policy)
    third = after_failure(second.failed_attempts, T0, policy)
    assert not first.locks and not second.locks and third.locks
    assert third.locked_until == T0 + timedelta(seconds=600) and third.failed_attempts == 0
    assert locked(third.locked_until, T0 + timedelta(seconds=599))
    assert not locked(third.locked_until, T0 + timedelta(seconds=600)) and not locked(None, T0)


def test_sessions_end_when_idle_or_too_old_and_the_second_factor_goes_stale() -> None:
    assert session_expired(T0, T0, T0 + timedelta(minutes=29), 1800, 43200) is None
    assert session_expired(T0, T0, T0 + timedelta(minutes=31), 1800, 43200) == "idle"
    assert session_expired(T0, T0 + timedelta(hours=12), T0 + timedelta(hours=12, minutes=1), 1800, 43200) \
        == "too old"
    assert second_factor_fresh(T0, T0 + timedelta(minutes=14), 900)
    assert not second_factor_fresh(T0, T0 + timedelta(minutes=16), 900) and not second_factor_fresh(None, T0, 900)


def test_roles_tokens_and_codes() -> None:
    assert parse_roles(["duty_officer", "commander", "duty_officer"]) == [Role.duty_officer, Role.commander]
    with pytest.raises(ValueError, match="role: unknown 'boss'"):
        parse_roles(["boss"])
    with pytest.raises(ValueError, match="at least one"):
        parse_roles([])
    assert token_roles_refusal([Role.duty_officer], [Role.duty_officer]) is None
    assert "admin" in (token_roles_refusal([Role.duty_officer], [Role.admin]) or "")
    # A role taken from the person since the token was made is gone from the token too.
    assert effective_roles([Role.viewer], [Role.viewer, Role.commander]) == {Role.viewer}
    stored = code_digest("123456", "salt")
    assert code_matches(" 123456 ", "salt", stored) and not code_matches("123457", "salt", stored)


def test_phone_numbers_are_masked_everywhere_in_the_data() -> None:
    assert mask_phone("+12025550101") == "+1202555****"
    assert mask_phone("call +8613900000002 now") == "call +861390000**** now"
    data = {"reporter": {"phone": "+12025550199"}, "timeline": [{"details": {"address": "+12025550101"}}],
            "title": "仓库起火", "grade": "III", "count": 3}
    masked = mask_phones(data)
    assert masked["reporter"]["phone"] == "+1202555****"
    assert masked["timeline"][0]["details"]["address"] == "+1202555****"
    assert masked["title"] == "仓库起火" and masked["count"] == 3


def test_redirects_stay_on_this_site() -> None:
    assert safe_next("/console/incidents/INC-1") == "/console/incidents/INC-1"
    for bad in (None, "", "https://evil.example/", "//evil.example/", "/\\evil", "javascript:alert(1)"):
        assert safe_next(bad) == "/console/"
