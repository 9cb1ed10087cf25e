"""The release workflow's service (信息发布, issue 17): the one function per step that the CLI (`pingan release …`), the
HTTP API (web/releases.py) and the console call, so every route is the same rule and the same log.

Each step reads the release inside its write transaction, asks the pure rules (handlers/releases), and commits the
changed release with its hash-chained log entry naming the authenticated person; a refusal is rolled back and then
logged as `refused` (the attempt is part of the record) before ReleaseRefused reaches the caller. Publication also
sets the CAP identifier, and the first release published at a plan level meets that level's `first-release` task in
the same transaction, so drills and situation reports score it.

Who holds which role: the person's account roles (handlers/access; the API passes the caller's, the CLI reads the
account) and the command roles the incident's plan level gives them now (a person, an on-duty roster member or a
handover's new holder), so the commander the plan names approves even without a commander account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pingan.handlers.incidents.tasks import task_key, tasks_done
from pingan.handlers.plans.directory import resolve
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.releases import asks, rules
from pingan.handlers.releases.asks import AskEvent
from pingan.handlers.releases.drafting import ReleaseForbidden, ReleaseRefused, draft_release
from pingan.handlers.releases.rules import Actor
from pingan.schemas.action import Action, ActionDraft, ActionKind
from pingan.schemas.areas import AlertArea
from pingan.schemas.common import utcnow
from pingan.schemas.directory import Person
from pingan.schemas.incident import Incident
from pingan.schemas.notification import Notification
from pingan.schemas.plan import Level, Plan
from pingan.schemas.release import Release, ReleaseChannel, ReleaseState, ReleaseTexts
from pingan.schemas.taxonomy import Grade
from pingan.store import releases as release_store
from pingan.store.engine import write_tx
from pingan.store.identity import IdentityStore
from pingan.store.log import append_actions
from pingan.store.repository import Store
from pingan.store.response import ResponseStore

FIRST_RELEASE_TASK = "first-release"  # the plan task the incident's first published release meets
REMINDER = "system:release-reminder"  # the actor of approval reminders

__all__ = ["FIRST_RELEASE_TASK", "Caller", "ReleaseForbidden", "ReleaseNotFound", "ReleaseRefused", "ReleaseService",
           "Step", "account_roles"]


class ReleaseNotFound(ReleaseRefused):
    """No such release or incident (HTTP 404)."""


@dataclass(frozen=True)
class Caller:
    """The authenticated person and how: account roles, and details for the log (`via`, `auth`, `token`)."""

    person: str
    roles: frozenset[str] = frozenset()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Asked:
    """One person asked to approve one revision of a release: when, and how each channel's message fared."""

    person: str
    revision: int
    at: datetime
    channels: dict[str, str]  # channel -> ledger state (intended, sending, sent, delivered, failed)


@dataclass(frozen=True)
class Step:
    release: Release
    actions: list[Action]


class ReleaseService:
    def __init__(self, store: Store, plans: PlanSet, cap_sender: str) -> None:
        self.store = store
        self.plans = plans
        self.cap_sender = cap_sender

    # --- reading -------------------------------------------------------------------------------------------------

    def incident(self, some_id: str) -> Incident:
        resolved = self.store.resolve_incident_id(some_id)
        incident = self.store.get_incident(resolved) if resolved else None
        if incident is None:
            raise ReleaseNotFound(f"incident {some_id} not found")
        return incident

    def get(self, release_id: str) -> Release:
        release = release_store.get(self.store, release_id)
        if release is None:
            raise ReleaseNotFound(f"release {release_id} not found")
        return release

    def for_incident(self, incident_id: str) -> list[Release]:
        return release_store.list_for_incident(self.store, self.incident(incident_id).id)

    def approval_requests(self, incident_id: str) -> dict[str, list[Asked]]:
        """Release id -> who was asked to approve it and when (the draft's and edits' log entries list the intents),
        with each message's state in the ledger now: the console's release page shows it."""
        found = self.incident(incident_id)
        states = {e.notification.idempotency_key: e.state.value for e in self.store.ledger_for(found.id)}
        out: dict[str, list[Asked]] = {}
        for action in self.store.timeline(found.id):
            if action.kind not in (ActionKind.release_drafted, ActionKind.release_edited, ActionKind.release_reminded):
                continue
            asked: dict[str, Asked] = {}
            for n in action.details.get("notifications") or []:
                row = asked.setdefault(n["recipient"], Asked(n["recipient"], int(action.details.get("revision", 1)),
                                                             action.at, {}))
                row.channels[n["channel"]] = states.get(n["key"], "intended")
            out.setdefault(str(action.details.get("release")), []).extend(asked.values())
        return out

    def plan_level(self, incident: Incident) -> tuple[Plan, Level]:
        plan = self.plans.get(self.store.response_plan(incident.id) or "")
        grade = ResponseStore(self.store).response_grade(incident.id) or incident.grade.value
        level = plan.level(Grade(grade)) if plan else None
        if plan is None or level is None:
            raise ReleaseRefused(f"incident {incident.id} has no plan level in force, so no release template; "
                                 "wait for its plan to be activated")
        return plan, level

    def actor(self, incident: Incident, caller: Caller) -> Actor:
        """The caller with every role they hold for this incident: account roles and the plan level's command
        roles they hold now."""
        held = set(caller.roles)
        try:
            _, level = self.plan_level(incident)
        except ReleaseRefused:
            return Actor(caller.person, frozenset(held))
        holders = ResponseStore(self.store).role_holders(incident.id)
        now = utcnow()
        for role, target in level.command.items():
            if role.value in holders:
                if holders[role.value] == caller.person:
                    held.add(role.value)
            elif any(p.id == caller.person for p in resolve(target, level, self.plans.directory, now)):
                held.add(role.value)
        return Actor(caller.person, frozenset(held))

    # --- the steps -----------------------------------------------------------------------------------------------

    def draft(self, incident_id: str, caller: Caller, *, all_clear: bool = False, template_id: str | None = None,
              channels: Sequence[ReleaseChannel] | None = None) -> Step:
        incident = self.incident(incident_id)
        try:
            plan, level = self.plan_level(incident)
            with write_tx(self.store.engine) as conn:
                existing = release_store.for_incident_in(conn, incident.id)
                release = draft_release(
                    incident, plan, level, _published(existing), release_id=_next_id(incident.id, existing),
                    by=caller.person, at=utcnow(), all_clear=all_clear, template_id=template_id, channels=channels)
                rules.may_draft(release, self.actor(incident, caller))
                release_store.save(conn, release)
                asked = self._ask(conn, release, incident, AskEvent.approval_requested, caller)
                logged = self._log(conn, release, ActionKind.release_drafted, caller, {
                    "kind": release.kind.value, "template": release.template_id, "references": release.references,
                    **_content(release), **asked}, key=f"release_drafted:{release.id}")
        except ReleaseRefused as exc:
            self._refused(incident.id, None, caller, "draft", exc)
            raise
        return Step(release, logged)

    def edit(self, release_id: str, caller: Caller, *, texts: ReleaseTexts | None = None,
             areas: list[AlertArea] | None = None, channels: list[ReleaseChannel] | None = None) -> Step:
        def step(conn: Connection, release: Release, actor: Actor) -> tuple[Release, list[Action]]:
            edited = rules.edit(release, actor, utcnow(), texts=texts, areas=areas, channels=channels)
            # Back to draft after an approval or a rejection: the approvers are asked again (a new revision, new
            # keys); an edit of a draft they were already asked about does not ask twice.
            asked = self._ask(conn, edited, None, AskEvent.approval_requested, caller) \
                if release.state is not ReleaseState.draft else {}
            return edited, self._log(conn, edited, ActionKind.release_edited, caller, {
                "from_state": release.state.value, **_content(edited), **asked})
        return self._step(release_id, caller, "edit", step)

    def approve(self, release_id: str, caller: Caller, revision: int | None = None) -> Step:
        def step(conn: Connection, release: Release, actor: Actor) -> tuple[Release, list[Action]]:
            approved = rules.approve(release, actor, utcnow(), revision)
            asked = self._ask(conn, approved, None, AskEvent.approved, caller)
            return approved, self._log(conn, approved, ActionKind.release_approved, caller, {
                "drafted_by": release.drafted_by, "edited_by": release.edited_by,
                "approver_roles": release.approver_roles, "held": sorted(actor.roles), **asked})
        return self._step(release_id, caller, "approve", step)

    def reject(self, release_id: str, caller: Caller, reason: str) -> Step:
        def step(conn: Connection, release: Release, actor: Actor) -> tuple[Release, list[Action]]:
            rejected = rules.reject(release, actor, utcnow(), reason)
            asked = self._ask(conn, rejected, None, AskEvent.rejected, caller, rejected.rejected_reason or "")
            return rejected, self._log(conn, rejected, ActionKind.release_rejected, caller,
                                       {"reason": rejected.rejected_reason, **asked})
        return self._step(release_id, caller, "reject", step)

    def publish(self, release_id: str, caller: Caller, revision: int | None = None) -> Step:
        def step(conn: Connection, release: Release, actor: Actor) -> tuple[Release, list[Action]]:
            earlier = _published(release_store.for_incident_in(conn, release.incident_id))
            out = rules.publish(release, actor, utcnow(), earlier,
                                rules.cap_identifier(self.cap_sender, release.id), revision)
            asked = self._ask(conn, out, None, AskEvent.published, caller)
            logged = self._log(conn, out, ActionKind.release_published, caller, {
                "kind": out.kind.value, "references": out.references, "cap_identifier": out.cap_identifier,
                "channels": [c.value for c in out.channels], "status": out.status.value,
                "approved_by": out.approved_by, **asked}, key=f"release_published:{out.id}")
            logged += self._first_release_task(conn, out, caller)
            return out, logged
        return self._step(release_id, caller, "publish", step)

    def withdraw(self, release_id: str, caller: Caller, reason: str = "") -> Step:
        def step(conn: Connection, release: Release, actor: Actor) -> tuple[Release, list[Action]]:
            out = rules.withdraw(release, actor)
            # The approvers asked about a waiting draft, and the authors, learn it needs nothing more from them.
            told = self.ask_intents(out, None, AskEvent.withdrawn, caller, reason.strip()[:500],
                                    waiting=release.state is ReleaseState.draft)
            release_store.add_intents(conn, told)
            return out, self._log(conn, out, ActionKind.release_withdrawn, caller, {
                "from_state": release.state.value, "reason": reason.strip()[:2000],
                **({"notifications": asks.logged(told)} if told else {})})
        return self._step(release_id, caller, "withdraw", step)

    def remind(self, release_id: str, now: datetime | None = None) -> list[Notification]:
        """A draft still waiting: ask its approvers (the holders now) again, once per revision, with how long it
        has waited; the intents and a `release_reminded` entry in one transaction. The intents written (none when
        it is no longer a draft, or this revision was reminded already)."""
        now = now or utcnow()
        incident = self.incident(self.get(release_id).incident_id)
        caller = Caller(REMINDER)
        with write_tx(self.store.engine) as conn:
            current = release_store.get_in(conn, release_id)  # under the lock: approved meanwhile, nobody is asked
            if current is None or current.state is not ReleaseState.draft:
                return []
            waited = max(0, int((now - (current.edited_at or current.drafted_at)).total_seconds() // 60))
            intents = self.ask_intents(current, incident, AskEvent.approval_reminder, caller, str(waited))
            fresh = release_store.add_intents(conn, intents)
            if fresh:
                self._log(conn, current, ActionKind.release_reminded, caller, {
                    "waited_min": waited, "notifications": asks.logged(fresh)},
                    key=f"release_reminded:{current.id}:{current.revision}"[:200])
        return fresh

    # --- plumbing ------------------------------------------------------------------------------------------------

    def _step(self, release_id: str, caller: Caller, doing: str, step: Any) -> Step:
        release = self.get(release_id)
        incident = self.incident(release.incident_id)
        actor = self.actor(incident, caller)
        try:
            with write_tx(self.store.engine) as conn:
                current = release_store.get_in(conn, release_id)  # read again under the lock: no lost update
                assert current is not None
                changed, logged = step(conn, current, actor)
                release_store.save(conn, changed)
        except ReleaseRefused as exc:
            self._refused(incident.id, release.id, caller, doing, exc)
            raise
        return Step(changed, logged)

    def _log(self, conn: Connection, release: Release, kind: ActionKind, caller: Caller, details: dict[str, Any],
             key: str | None = None) -> list[Action]:
        plan = self.plans.get(release.plan_id or "")
        return append_actions(conn, [ActionDraft(
            incident_id=release.incident_id, at=utcnow(), actor=caller.person, kind=kind,
            plan_id=release.plan_id, plan_version=plan.version if plan else None, idempotency_key=key,
            details={"release": release.id, "revision": release.revision, "state": release.state.value,
                     **details, **caller.details})])

    def ask_intents(self, release: Release, incident: Incident | None, event: AskEvent, caller: Caller,
                    reason: str = "", waiting: bool = False) -> list[Notification]:
        """Who is told of this step, as intents (handlers/releases/asks.py): for a draft (and a withdrawal of one
        that was `waiting` for approval), the approver roles' holders now (none when no plan level is in force); for
        an approval, rejection, publication or withdrawal, the drafter and the last editor; never whoever did it."""
        incident = incident or self.incident(release.incident_id)
        plan = self.plans.get(release.plan_id or "")
        directory = self.plans.directory
        now = utcnow()
        people: list[Person] = []
        if event in (AskEvent.approval_requested, AskEvent.approval_reminder) or waiting:
            try:
                _, level = self.plan_level(incident)
                people = asks.approvers(release, level, ResponseStore(self.store).role_holders(incident.id),
                                        directory, now)
            except ReleaseRefused:
                pass
        if event not in (AskEvent.approval_requested, AskEvent.approval_reminder):
            people += [p for p in asks.authors(release, directory, caller.person) if p not in people]
        people = [p for p in people if p.id != caller.person]
        return asks.ask_intents(release, incident, event, people, now, plan.version if plan else 1,
                                actor=caller.person, reason=reason)

    def _ask(self, conn: Connection, release: Release, incident: Incident | None, event: AskEvent, caller: Caller,
             reason: str = "") -> dict[str, Any]:
        """The step's intents into the ledger in the step's transaction, and their list for its log entry (as a
        plan_activated entry lists its notifications): the timeline shows who was asked, and when."""
        intents = self.ask_intents(release, incident, event, caller, reason)
        release_store.add_intents(conn, intents)
        return {"notifications": asks.logged(intents)} if intents else {}

    def _refused(self, incident_id: str, release_id: str | None, caller: Caller, doing: str,
                 exc: ReleaseRefused) -> None:
        if isinstance(exc, ReleaseNotFound):
            return
        with write_tx(self.store.engine) as conn:
            append_actions(conn, [ActionDraft(
                incident_id=incident_id, at=utcnow(), actor=caller.person, kind=ActionKind.refused,
                details={"reason": str(exc), "release_step": doing,
                         **({"release": release_id} if release_id else {}), **caller.details})])

    def _first_release_task(self, conn: Connection, release: Release, caller: Caller) -> list[Action]:
        """The level in force's first-release task, met by the first release published while it is in force: the
        incident's first, and after a grade change the first at the new level (its task has its own deadline)."""
        incident = self.incident(release.incident_id)
        try:
            _, level = self.plan_level(incident)
        except ReleaseRefused:
            return []
        if FIRST_RELEASE_TASK not in (t.id for t in level.tasks):
            return []
        grade = level.grade.value
        done = tasks_done((a.kind.value, a.details) for a in self.store.timeline(incident.id))
        if (grade, FIRST_RELEASE_TASK) in done:
            return []
        return append_actions(conn, [ActionDraft(
            incident_id=incident.id, at=release.published_at or utcnow(), actor=caller.person,
            kind=ActionKind.task_done, plan_id=release.plan_id, idempotency_key=task_key(incident.id, grade,
                                                                                         FIRST_RELEASE_TASK),
            details={"task": FIRST_RELEASE_TASK, "level": grade, "release": release.id,
                     "reason": f"met by the first published release {release.id}"})])


def account_roles(store: Store, person: str) -> frozenset[str]:
    """The roles of the person's account (for the CLI, which names the person rather than signing them in)."""
    user = IdentityStore(store.engine).user(person)
    return frozenset(str(r) for r in user.roles) if user and not user.disabled else frozenset()


def _published(releases: Iterable[Release]) -> list[Release]:
    return [r for r in releases if r.state is ReleaseState.published]


def _next_id(incident_id: str, existing: Sequence[Release]) -> str:
    taken = {r.id for r in existing}
    n = len(existing) + 1
    while f"{incident_id}-R{n}" in taken:
        n += 1
    return f"{incident_id}-R{n}"


def _content(release: Release) -> dict[str, Any]:
    """What the public would read, in the log: every revision's text is kept there."""
    return {"texts": release.texts.model_dump(mode="json"), "channels": [c.value for c in release.channels],
            "areas": [a.name for a in release.areas if a.name], "status": release.status.value}
