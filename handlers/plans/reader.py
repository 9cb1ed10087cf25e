"""Read the YAML response plans and the directory: per-file problems collected, never raised.

Layout of a plans directory:
    plans_dir/*.yaml | *.yml         one Plan per file
    plans_dir/directory/*.yaml|yml   each a mapping with any of people / departments / rosters, merged

`read_plans` does the per-file work (YAML, schema, duplicate keys and ids, template placeholders) and builds
what it could read; handlers.plans.lint checks the set as a whole, and handlers.plans.load puts in force only a
set the lint accepts. Nothing here imports the lint: dependencies point one way (reader <- lint <- load).
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pingan.handlers.plans.directory import DirectoryIndex
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanProblem
from pingan.handlers.plans.yaml_source import FAST_LOADER, Loc, SourceDoc, compose, duplicate_keys, format_loc, node_pos
from pingan.schemas.common import LocalizedText
from pingan.schemas.directory import Department, Directory, Person, Roster
from pingan.schemas.plan import Plan

# Keep in step with the placeholders documented on NotifyStep.template and rendered by handlers.notify.
PLACEHOLDERS = frozenset(
    {"id", "title", "grade", "grade_name", "area", "category", "subtype", "plan", "level", "role"}
)



PLAN_SUFFIXES = (".yaml", ".yml")



DIRECTORY_SUBDIR = "directory"



M = TypeVar("M", bound=BaseModel)



@dataclass(frozen=True)
class DirEntry:
    """Where a directory entry was defined: its file and its loc, e.g. ("rosters", 2)."""

    doc: SourceDoc
    loc: Loc



@dataclass
class PlansRead:
    """What `read_plans` found: valid plans with their files, the merged directory, and per-file problems.

    `complete` is False when some file could not be used at all; the set checks in handlers.lint still
    run on what did load, but no PlanSet is built from a partial read.
    """

    directory_path: Path
    plans: list[tuple[Plan, SourceDoc]] = field(default_factory=list)
    directory: Directory = field(default_factory=Directory)
    entries: dict[tuple[str, str], DirEntry] = field(default_factory=dict)  # (kind, id) -> where
    problems: list[PlanProblem] = field(default_factory=list)
    complete: bool = True

    def planset(self) -> PlanSet:
        return PlanSet(tuple(p for p, _ in self.plans), {p.id: d.file for p, d in self.plans},
                       DirectoryIndex.of(self.directory))



def plan_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PLAN_SUFFIXES)



def read_plans(directory: Path) -> PlansRead:
    """Parse and validate every plan file and directory file; problems are collected, never raised."""
    directory = Path(directory)
    read = PlansRead(directory)
    if not directory.is_dir():
        read.problems.append(PlanProblem(str(directory), 0, 0, "plans directory does not exist"))
        read.complete = False
        return read
    _read_directory(directory / DIRECTORY_SUBDIR, read)
    first_seen: dict[str, SourceDoc] = {}  # plan id -> the file that defined it first
    for path in plan_files(directory):
        loaded = _load_file(path, Plan, read.problems)
        if loaded is None:
            read.complete = False
            continue
        plan, doc = loaded
        problems = _template_problems(doc, plan)
        if problems:
            read.problems.extend(problems)
            read.complete = False
            continue
        if plan.id in first_seen:
            read.problems.append(doc.problem(("id",), f"id: duplicate plan id {plan.id!r} (first defined at "
                                                      f"{first_seen[plan.id].where(('id',))})"))
            read.complete = False
            continue
        first_seen[plan.id] = doc
        read.plans.append((plan, doc))
    return read



def _read_directory(path: Path, read: PlansRead) -> None:
    """Merge directory/*.yaml into one Directory; an id defined twice is an error at its second place."""
    if not path.is_dir():
        return  # a plan set may rely on persons only by accident; unknown references are reported by lint
    people: list[Person] = []
    departments: list[Department] = []
    rosters: list[Roster] = []
    for file in plan_files(path):
        loaded = _load_file(file, Directory, read.problems)
        if loaded is None:
            read.complete = False
            continue
        part, doc = loaded
        kinds: list[tuple[str, list[Any], list[Any]]] = [
            ("people", part.people, people), ("departments", part.departments, departments),
            ("rosters", part.rosters, rosters)]
        for kind, items, merged in kinds:
            for i, item in enumerate(items):
                key = (kind, item.id)
                if key in read.entries:
                    first = read.entries[key]
                    message = (f"{kind}[{i}].id: duplicate id {item.id!r} "
                               f"(first defined at {first.doc.where(first.loc)})")
                    read.problems.append(doc.problem((kind, i, "id"), message))
                    read.complete = False
                    continue
                read.entries[key] = DirEntry(doc, (kind, i))
                merged.append(item)
    read.directory = Directory(people=people, departments=departments, rosters=rosters)



def _load_file(path: Path, model: type[M], problems: list[PlanProblem]) -> tuple[M, SourceDoc] | None:
    """The validated model and its node tree, or None after appending the file's problems."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(PlanProblem(name, 1, 1, f"cannot read: {exc}"))
        return None
    try:
        try:
            root, data = compose(text, FAST_LOADER)
        except yaml.YAMLError:
            # libyaml words its errors differently; the pure-Python parser's message and mark are the documented
            # ones, and a broken file is rare enough to parse twice.
            root, data = compose(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context:
            started = f" started at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            detail += f" ({exc.context}{started})"
        problems.append(PlanProblem(name, line, col, f"YAML syntax error: {detail}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(PlanProblem(name, 1, 1, f"YAML error: {exc}"))
        return None
    if root is None or not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        what = "one plan: a YAML mapping with id, version, title, …" if model is Plan else \
            "a YAML mapping with any of people, departments, rosters"
        problems.append(PlanProblem(name, 1, 1, f"expected {what}"))
        return None
    doc = SourceDoc(name, root)
    # PyYAML silently keeps the last of two equal keys; in a plan that would quietly drop, say, a level.
    found = [PlanProblem(name, *node_pos(node), f"duplicate key {key!r}") for key, node in duplicate_keys(root)]
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = format_loc(loc)
            found.append(doc.problem(loc, f"{where}: {err['msg']}" if where else err["msg"]))
        problems.extend(found)
        return None
    problems.extend(found)
    return (value, doc) if not found else None



def _plan_texts(plan: Plan) -> Iterator[tuple[Loc, LocalizedText]]:
    """Every text that is rendered into a message: notify templates and release texts."""
    for li, level in enumerate(plan.levels):
        for si, step in enumerate(level.notify):
            yield ("levels", li, "notify", si, "template"), step.template
    for ri, release in enumerate(plan.release):
        yield ("release", ri, "text"), release.text



def _template_problems(doc: SourceDoc, plan: Plan) -> list[PlanProblem]:
    """A misspelt placeholder would reach a commander's phone as raw braces; catch it at load time."""
    problems: list[PlanProblem] = []
    for base, localized in _plan_texts(plan):
        for lang in ("zh", "en"):
            text = getattr(localized, lang)
            if text is None:
                continue
            loc = (*base, lang)
            where = format_loc(loc)
            try:
                parsed = list(string.Formatter().parse(text))
            except ValueError as exc:
                problems.append(doc.problem(loc, f"{where}: {exc}"))
                continue
            # handlers.notify substitutes bare {name} only; anything fancier would reach the reader raw.
            bad = sorted({"{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                          for _, f, spec, conv in parsed
                          if f is not None and (f not in PLACEHOLDERS or spec or conv)})
            if bad:
                allowed = " ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                message = f"{where}: unknown placeholder(s) {' '.join(bad)}; allowed: {allowed}"
                problems.append(doc.problem(loc, message))
    return problems
