"""`pingan plans lint`: every problem of a plans directory at once, in compiler style.

Per-file problems (YAML syntax, schema, duplicate keys and ids, template placeholders) come from
handlers.plans.reader.read_plans. The set-level rules below need the whole set. ERRORS (exit 1, and
load_plans refuses the set):

  references   an unknown roster, person or department anywhere (targets, task owners, command,
               level departments, plan owner, approved_by, last_editor, roster members and overrides,
               department rosters and contacts, a person's department); an invalid roster time zone;
               a role target the level's command does not define; a command role chain that loops.
  matchers     a label matcher regex that does not compile.
  ambiguity    two approved plans filed under the same cell (category, subtype, hazard, grade) with equal
               specificity, i.e. matching would rank them equal for some incident: the same tier, areas
               that give the same longest prefix (both empty, or a code in both), as many matchers, and
               matchers that can hold together, in overlapping effective dates.
  reachability a notify step none of whose possible recipients (every roster member and override, the
               department's roster or contact, the role's target) has an address on any of its channels;
               a level all of whose steps reach nobody is one error on the level instead.
  timing       `repeat` without `ack_timeout_min` (no interval); a task due before the level's first
               notification; a task due before the step that tells its owner is scheduled (its delay_min:
               the time the chain needs when it is acknowledged, so does not escalate early).
WARNINGS (reported, never fatal):
  a tie for exercises/tests only (a draft involved, or disjoint effective dates); a tie whose regex
  matchers cannot be decided; a target with some possible recipients that have no address on the step's
  channels (the step misses them on their shift); a task owner no step of the level notifies; an
  `ack_timeout_min` whose only use is escalating (no repeat, no roll call) that never escalates (the next
  step is already due, or nothing follows); a roll call without a timeout; an approved plan without
  approvers, approved by its last editor or by someone without the directory's plan_approver role; a directory
  where no one holds plan_approver (then no plan can be approved); an expired plan; escalate_grade.raise_to or
  release grades with no level in the plan; an override that covers a non-member.
AREAS (handlers.plans.lint_areas): the district's hierarchy in areas/*.geojson (rings closed, no sibling overlaps,
  every area within its parent, codes unique, parents exist, grid officers exist).
TRENDS (handlers.plans.lint_trends): the trend early-warning rules file, plans/trends/rules.yaml, when present.
COVERAGE (handlers.plans.lint_coverage): more than one catch-all plan is an error; no catch-all, a catch-all
  not approved, and each category's cells only the catch-all covers are warnings (without a catch-all: a
  category and grade with no plan at all).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pingan.handlers.plans.approval import plan_approvers
from pingan.handlers.plans.cells import dates_overlap, equal_specificity
from pingan.handlers.plans.directory import DirectoryIndex, recipient_for
from pingan.handlers.plans.lint_areas import area_problems
from pingan.handlers.plans.lint_coverage import coverage_problems
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.handlers.plans.planset import PlanSet, plan_cells
from pingan.handlers.plans.problems import PlanProblem, Severity
from pingan.handlers.plans.reader import PlansRead, read_plans
from pingan.handlers.plans.timeline import format_minute, step_schedule
from pingan.handlers.plans.yaml_source import Loc, SourceDoc, format_loc
from pingan.schemas.directory import DirectoryRole, Person
from pingan.schemas.plan import Level, MatchOp, Plan, PlanStatus, Target
from pingan.schemas.taxonomy import Grade


@dataclass(frozen=True)
class LintReport:
    errors: list[PlanProblem]
    warnings: list[PlanProblem]
    planset: PlanSet | None  # None when some file could not be loaded at all

    @property
    def ok(self) -> bool:
        return not self.errors


def lint_plans(directory: Path, today: date | None = None) -> LintReport:
    read = read_plans(directory)
    errors, warnings = check_read(read, today)
    _, trend_problems = read_trend_rules(directory)  # plans/trends/rules.yaml (issue 18), when there is one
    errors += [p for p in trend_problems if p.severity is Severity.error]
    warnings += [p for p in trend_problems if p.severity is Severity.warning]
    return LintReport(_sorted(read.problems + errors), _sorted(warnings), read.planset() if read.complete else None)


def check_read(read: PlansRead, today: date | None = None) -> tuple[list[PlanProblem], list[PlanProblem]]:
    """The set-level rules over what read_plans loaded: (errors, warnings)."""
    checker = _Checker(read, today or date.today())
    checker.run()
    area_errors, area_warnings = area_problems(read)  # plans_dir/areas: the grid and its officers
    return checker.errors + area_errors, checker.warnings + area_warnings


def _sorted(problems: list[PlanProblem]) -> list[PlanProblem]:
    return sorted(problems, key=lambda p: (p.file, p.line, p.col))


class _Checker:
    def __init__(self, read: PlansRead, today: date) -> None:
        self.read = read
        self.today = today
        self.dir = DirectoryIndex.of(read.directory)
        self.errors: list[PlanProblem] = []
        self.warnings: list[PlanProblem] = []

    def run(self) -> None:
        self._directory()
        for plan, doc in self.read.plans:
            self._plan(plan, doc)
        self._ambiguity()
        self._coverage()

    def error(self, doc: SourceDoc, loc: Loc, message: str) -> None:
        self.errors.append(doc.problem(loc, f"{format_loc(loc)}: {message}"))

    def warn(self, doc: SourceDoc, loc: Loc, message: str) -> None:
        self.warnings.append(doc.problem(loc, f"{format_loc(loc)}: {message}", Severity.warning))

    def ref(self, doc: SourceDoc, loc: Loc, kind: str, ident: str, known: Mapping[str, Any]) -> bool:
        if ident in known:
            return True
        close = difflib.get_close_matches(ident, list(known), n=1)
        self.error(doc, loc, f"unknown {kind} {ident!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        return False

    # ── the directory ────────────────────────────────────────────────────────
    def _directory(self) -> None:
        d = self.dir
        if not plan_approvers(d.people):
            self._no_approver()
        for (kind, ident), entry in self.read.entries.items():
            doc, base = entry.doc, entry.loc
            if kind == "people":
                person = d.people[ident]
                if person.department:
                    self.ref(doc, (*base, "department"), "department", person.department, d.departments)
            elif kind == "departments":
                department = d.departments[ident]
                if department.duty_roster:
                    self.ref(doc, (*base, "duty_roster"), "roster", department.duty_roster, d.rosters)
                if department.contact:
                    self.ref(doc, (*base, "contact"), "person", department.contact, d.people)
            else:
                roster = d.rosters[ident]
                try:
                    ZoneInfo(roster.timezone)
                except (ZoneInfoNotFoundError, ValueError):
                    self.error(doc, (*base, "timezone"), f"unknown time zone {roster.timezone!r}")
                for i, member in enumerate(roster.members):
                    self.ref(doc, (*base, "members", i), "person", member, d.people)
                for i, override in enumerate(roster.overrides):
                    self.ref(doc, (*base, "overrides", i, "person"), "person", override.person, d.people)
                    if override.covers is not None and override.covers not in roster.members:
                        self.warn(doc, (*base, "overrides", i, "covers"),
                                  f"{override.covers!r} is not a member of roster {roster.id!r}: never applies")

    def _no_approver(self) -> None:
        message = ("no person holds the directory role plan_approver: no plan can be approved "
                   "(add `roles: [plan_approver]` to the people who approve plans)")
        people = [entry for (kind, _), entry in self.read.entries.items() if kind == "people"]
        if people:
            self.warn(people[0].doc, people[0].loc, message)
        else:
            self.warnings.append(PlanProblem(str(self.read.directory_path), 0, 0, message, Severity.warning))

    # ── one plan ─────────────────────────────────────────────────────────────
    def _plan(self, plan: Plan, doc: SourceDoc) -> None:
        d = self.dir
        self.ref(doc, ("owner",), "department", plan.owner, d.departments)
        for i, person in enumerate(plan.approved_by):
            self.ref(doc, ("approved_by", i), "person", person, d.people)
        if plan.last_editor:
            self.ref(doc, ("last_editor",), "person", plan.last_editor, d.people)
        if plan.status is PlanStatus.approved:
            if not plan.approved_by:
                self.warn(doc, ("status",), "approved, but approved_by is empty (`pingan plans approve` sets it)")
            elif plan.last_editor in plan.approved_by:
                self.warn(doc, ("last_editor",), f"{plan.last_editor!r} edited and approved this version (four eyes)")
            for i, person in enumerate(plan.approved_by):
                if person in d.people and DirectoryRole.plan_approver not in d.people[person].roles:
                    self.warn(doc, ("approved_by", i), f"{person!r} does not hold the directory role plan_approver")
            if plan.effective_to and plan.effective_to < self.today:
                self.warn(doc, ("effective_to",), f"expired on {plan.effective_to}: actual incidents no longer match")
        for i, matcher in enumerate(plan.applies_to.matchers):
            if matcher.op in (MatchOp.re, MatchOp.nre):
                try:
                    re.compile(matcher.value)
                except re.error as exc:
                    self.error(doc, ("applies_to", "matchers", i, "value"), f"bad regex: {exc}")
        grades = set(plan.grades)
        for i, rule in enumerate(plan.escalate_grade):
            if rule.raise_to not in grades:
                self.warn(doc, ("escalate_grade", i, "raise_to"),
                          f"raises to grade {rule.raise_to.value}, which this plan has no level for")
        for i, release in enumerate(plan.release):
            missing = [g.value for g in release.grades if g not in grades]
            if missing:
                self.warn(doc, ("release", i, "grades"), f"grades {', '.join(missing)} have no level in this plan")
        for li, level in enumerate(plan.levels):
            self._level(doc, ("levels", li), level)

    def _target(self, doc: SourceDoc, loc: Loc, target: Target, level: Level) -> bool:
        """True when every id the target names exists."""
        d = self.dir
        if target.roster is not None:
            return self.ref(doc, (*loc, "roster"), "roster", target.roster, d.rosters)
        if target.person is not None:
            return self.ref(doc, (*loc, "person"), "person", target.person, d.people)
        if target.department is not None:
            return self.ref(doc, (*loc, "department"), "department", target.department, d.departments)
        if target.by_area:
            return True  # names no id: the incident's placement says who (lint_areas checks the officers exist)
        assert target.role is not None
        if target.role not in level.command:
            defined = ", ".join(r.value for r in level.command) or "none"
            self.error(doc, (*loc, "role"),
                       f"role {target.role.value!r} is not defined in this level's command (defined: {defined})")
            return False
        return True

    def _level(self, doc: SourceDoc, base: Loc, level: Level) -> None:
        for role, target in level.command.items():
            loc = (*base, "command", role.value)
            if self._target(doc, loc, target, level) and target.role is not None:
                chain = [role]
                while chain[-1] in level.command and level.command[chain[-1]].role is not None:
                    nxt = level.command[chain[-1]].role
                    assert nxt is not None
                    if nxt in chain:
                        path = " → ".join(r.value for r in [*chain, nxt])
                        self.error(doc, (*loc, "role"), f"role chain {path} never reaches a person")
                        break
                    chain.append(nxt)
        for i, department in enumerate(level.departments):
            self.ref(doc, (*base, "departments", i), "department", department, self.dir.departments)
        self._reachability(doc, base, level)
        self._timing(doc, base, level)

    def _reachability(self, doc: SourceDoc, base: Loc, level: Level) -> None:
        silent: list[tuple[int, list[Person]]] = []
        for si, step in enumerate(level.notify):
            sloc = (*base, "notify", si)
            known = [self._target(doc, (*sloc, "targets", ti), t, level) for ti, t in enumerate(step.targets)]
            if not all(known):
                continue  # an unknown id is the error to fix first
            everyone: list[Person] = []
            missed: list[tuple[int, list[Person]]] = []
            reached = False
            for ti, target in enumerate(step.targets):
                people = self.possible(target, level)
                everyone.extend(people)
                missing = [p for p in people if not any(recipient_for(p, c) for c in step.channels)]
                reached = reached or len(missing) < len(people)
                if missing:
                    missed.append((ti, missing))
            for ti, missing in missed if reached else ():
                names = ", ".join(f"{p.name} ({p.id})" for p in missing)
                self.warn(doc, (*sloc, "targets", ti), f"{names}: no {_channels(step.channels)} address; "
                          f"step {step.id!r} misses them through this target")
            if not reached:
                silent.append((si, everyone))
        if silent and len(silent) == len(level.notify):
            self.error(doc, (*base, "grade"), f"level {level.grade.value} is unreachable: none of its notify steps "
                       "has a recipient with an address on the step's channels")
            return
        for si, people in silent:
            step = level.notify[si]
            names = ", ".join(sorted({p.id for p in people})) or "nobody"
            self.error(doc, (*base, "notify", si, "channels"), f"step {step.id!r} reaches nobody: none of {names} "
                       f"has a {_channels(step.channels)} address")

    def _timing(self, doc: SourceDoc, base: Loc, level: Level) -> None:
        schedule = step_schedule(level)
        for i, sched in enumerate(schedule):
            step, sloc = sched.step, (*base, "notify", i)
            if step.repeat and step.ack_timeout_min is None:
                self.error(doc, (*sloc, "repeat"), "repeat needs ack_timeout_min: it is the interval between repeats")
            if step.roll_call and step.ack_timeout_min is None:
                self.warn(doc, (*sloc, "roll_call"), "roll call without ack_timeout_min is checked at once")
            # With repeats or a roll call the timeout is their interval; otherwise escalating is its only use.
            if sched.window_end is not None and not step.roll_call and not step.repeat:
                if i + 1 == len(schedule):
                    self.warn(doc, (*sloc, "ack_timeout_min"), "has no effect: no step follows to escalate to")
                elif sched.window_end >= schedule[i + 1].step.delay_min:
                    nxt = schedule[i + 1].step
                    self.warn(doc, (*sloc, "ack_timeout_min"), f"never escalates: step {nxt.id!r} is due at "
                              f"{format_minute(nxt.delay_min)}, before the ack window closes")
        first = min(schedule, key=lambda s: s.fires)
        first_where = doc.where((*base, "notify", first.index, "delay_min"))
        for ti, task in enumerate(level.tasks):
            tloc = (*base, "tasks", ti)
            if not self._target(doc, (*tloc, "owner"), task.owner, level):
                continue
            due = format_minute(task.deadline_min)
            if task.deadline_min < first.fires:
                self.error(doc, (*tloc, "deadline_min"), f"task {task.id!r} is due at {due}, before the level's "
                           f"first notification at {format_minute(first.fires)} ({first_where})")
                continue
            owner = self.canonical(task.owner, level)
            telling = [s for s in schedule if any(self.canonical(t, level) == owner for t in s.step.targets)]
            if owner is None:
                continue
            if not telling:
                self.warn(doc, (*tloc, "owner"), f"no notify step of this level tells the owner ({owner})")
                continue
            soonest = min(telling, key=lambda s: s.scheduled)
            if task.deadline_min < soonest.scheduled:
                early = min(s.fires for s in telling)
                also = f"; {format_minute(early)} only if nobody acknowledges" if early < soonest.scheduled else ""
                self.error(doc, (*tloc, "deadline_min"),
                           f"task {task.id!r} is due at {due}, but its owner ({owner}) is told by step "
                           f"{soonest.step.id!r} at {format_minute(soonest.scheduled)}{also} "
                           f"({doc.where((*base, 'notify', soonest.index, 'delay_min'))})")

    # ── static resolution: who a target could ever reach ─────────────────────
    def possible(self, target: Target, level: Level, seen: frozenset[str] = frozenset()) -> list[Person]:
        d = self.dir
        if target.key() in seen:
            return []
        seen = seen | {target.key()}
        ids: list[str] = []
        if target.person is not None:
            ids = [target.person]
        elif target.roster is not None and target.roster in d.rosters:
            roster = d.rosters[target.roster]
            ids = [*roster.members, *(o.person for o in roster.overrides)]
        elif target.department is not None and target.department in d.departments:
            dep = d.departments[target.department]
            inner = Target(roster=dep.duty_roster) if dep.duty_roster else Target(person=dep.contact)
            return self.possible(inner, level, seen)
        elif target.role is not None and target.role in level.command:
            return self.possible(level.command[target.role], level, seen)
        elif target.by_area:  # anyone registered in an area may be the one an incident's placement names
            return [p for p in d.people.values() if p.area]
        return [d.people[i] for i in dict.fromkeys(ids) if i in d.people]

    def canonical(self, target: Target, level: Level, seen: frozenset[str] = frozenset()) -> str | None:
        """The person or roster a target finally names: a role and a department are ways of saying one."""
        if target.key() in seen:
            return None
        seen = seen | {target.key()}
        if target.department is not None:
            dep = self.dir.departments.get(target.department)
            if dep is None:
                return None
            inner = Target(roster=dep.duty_roster) if dep.duty_roster else Target(person=dep.contact)
            return self.canonical(inner, level, seen)
        if target.role is not None:
            command = level.command.get(target.role)
            return self.canonical(command, level, seen) if command else None
        return target.key().replace(":", " ", 1)

    # ── the set: ambiguity and coverage ─────────────────────────────────────
    def _ambiguity(self) -> None:
        docs = {plan.id: doc for plan, doc in self.read.plans}
        buckets: dict[tuple[Any, ...], list[Plan]] = {}
        for plan, _ in sorted(self.read.plans, key=lambda pd: pd[0].id):
            if plan.status is not PlanStatus.retired:
                for key, hazard in plan_cells(plan):
                    buckets.setdefault((*key, hazard), []).append(plan)
        # (lower id, higher id) -> (category, subtype, hazard) -> grades they share
        pairs: dict[tuple[str, str], dict[tuple[Any, ...], list[Grade]]] = {}
        for (category, subtype, grade, hazard), plans in buckets.items():
            for i, a in enumerate(plans):
                for b in plans[i + 1:]:
                    cells = pairs.setdefault((a.id, b.id), {})
                    cells.setdefault((category, subtype, hazard), []).append(grade)
        by_id = {plan.id: plan for plan, _ in self.read.plans}
        for (a_id, b_id), cells in sorted(pairs.items()):
            a, b = by_id[a_id], by_id[b_id]
            matchers = equal_specificity(a, b, {g for grades in cells.values() for g in grades})
            if matchers is False:
                continue
            real = a.status is b.status is PlanStatus.approved and dates_overlap(a, b)
            first, second = sorted((a, b), key=lambda p: docs[p.id].file)
            where = ", ".join(f"{c.value}/{s.value if s else '*'}/{h or '*'} grade {'/'.join(g.value for g in gs)}"
                              for (c, s, h), gs in cells.items())
            message = (f"ambiguous match: plans {first.id!r} ({docs[first.id].where(('applies_to',))}) and "
                       f"{second.id!r} match the same cells with equal specificity: {where}; "
                       f"matching would pick {a_id!r} (lowest id)")
            if not real or matchers is None:
                why = "matchers may overlap (regex)" if matchers is None else "ties for exercises and tests only"
                self.warn(docs[second.id], ("applies_to",), f"{message} — {why}")
            else:
                self.error(docs[second.id], ("applies_to",), message)

    def _coverage(self) -> None:
        errors, warnings = coverage_problems(self.read)
        self.errors += errors
        self.warnings += warnings


def _channels(channels: list[Any]) -> str:
    return "/".join(c.value for c in channels)
