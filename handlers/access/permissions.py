"""The roles and the one permission table (README "Who may do what" is generated from it by a test)."""

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"  # the city office watching the district: reads, never acts
    duty_officer = "duty_officer"  # 值班员: receives, acknowledges, escalates, hands over
    commander = "commander"  # 带班领导 / 指挥长: also closes and regrades (with a second factor)
    public_information = "public_information"  # 信息发布: releases (issue 17) and reads
    plan_author = "plan_author"  # writes, lints, tests plans
    drill_coordinator = "drill_coordinator"  # runs drills, the only one (with admin) who makes one live
    department_liaison = "department_liaison"  # police, fire, health…: only incidents involving their department
    admin = "admin"  # accounts and tokens, and everything else


class Permission(StrEnum):
    incidents_read = "incidents.read"
    phones_read = "phones.read"  # reporters' and responders' numbers unmasked
    incidents_report = "incidents.report"  # a person files an incident (console, API)
    acknowledge = "incidents.acknowledge"
    escalate = "incidents.escalate"
    handover = "incidents.handover"
    task = "incidents.task"
    note = "incidents.note"
    confirm = "incidents.confirm"  # a roll-call answer
    correct = "incidents.correct"  # merge and split
    close = "incidents.close"
    regrade = "incidents.regrade"
    shift_handover = "shift.handover"  # 交接班
    oncall_read = "oncall.read"
    plans_read = "plans.read"
    plans_test = "plans.test"
    plans_approve = "plans.approve"
    drills_read = "drills.read"
    drills_start = "drills.start"
    drills_live = "drills.live"
    log_read = "log.read"
    sitreps_read = "sitreps.read"  # situation reports (态势研判): district-wide, so not for department-scoped roles
    releases_draft = "releases.draft"  # 信息发布: draft, edit and withdraw a public release (issue 17)
    releases_approve = "releases.approve"  # approve or reject one (four eyes: never one's own; the plan names roles)
    releases_publish = "releases.publish"  # publish an approved release to its channels
    users_manage = "users.manage"
    tokens_manage = "tokens.manage"


P = Permission
_READ = {P.incidents_read, P.oncall_read, P.plans_read, P.drills_read, P.log_read, P.sitreps_read}
_RESPOND = {P.incidents_report, P.acknowledge, P.escalate, P.handover, P.task, P.note, P.confirm, P.correct,
            P.shift_handover, P.plans_test, P.phones_read}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.viewer: frozenset(_READ),
    Role.duty_officer: frozenset(_READ | _RESPOND),
    Role.commander: frozenset(_READ | _RESPOND | {P.close, P.regrade, P.releases_approve, P.releases_publish}),
    Role.public_information: frozenset(_READ | {P.releases_draft, P.releases_publish}),
    Role.plan_author: frozenset(_READ | {P.plans_test, P.plans_approve}),
    Role.drill_coordinator: frozenset(_READ | {P.drills_start, P.drills_live}),
    Role.department_liaison: frozenset({P.incidents_read, P.acknowledge, P.task, P.note, P.confirm, P.oncall_read}),
    Role.admin: frozenset(Permission),
}

# A stolen password alone must not close or regrade an incident.
SECOND_FACTOR: frozenset[Permission] = frozenset({P.close, P.regrade})
# These roles see only incidents whose active plan level involves one of their departments.
SCOPED_ROLES: frozenset[Role] = frozenset({Role.department_liaison})


def permissions_of(roles: Iterable[Role | str]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for role in roles:
        out |= PERMISSIONS.get(Role(role), frozenset())
    return frozenset(out)


def allowed(roles: Iterable[Role | str], permission: Permission) -> bool:
    return permission in permissions_of(roles)


def scoped(roles: Iterable[Role | str]) -> bool:
    """True when every role the person holds is department-scoped: they see only their departments' incidents."""
    held = {Role(r) for r in roles}
    return bool(held) and held <= SCOPED_ROLES


def sees_incident(roles: Iterable[Role | str], departments: Iterable[str], involved: Iterable[str]) -> bool:
    """Whether a person sees an incident whose active plan level involves the departments `involved`."""
    return not scoped(roles) or bool(set(departments) & set(involved))
