"""Load the YAML response plans and the directory, with errors that name the file, line and field.

Plans are written by hand in the emergency office; a mistake must point at the line to fix, not at a
pydantic loc tuple. So each file is composed to YAML nodes first (nodes carry their source marks),
constructed from those same nodes, validated, and every validation error is mapped back to a node.

Layout of a plans directory:
    plans_dir/*.yaml | *.yml         one Plan per file
    plans_dir/directory/*.yaml|yml   each a mapping with any of people / departments / rosters, merged

`read_plans` does the per-file work (YAML, schema, duplicate keys and ids, template placeholders);
handlers.lint checks the set as a whole (references, ambiguity, timing, coverage). `load_plans` runs both
and raises on any error, so a plan set the lint rejects is never put in force.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pingan.handlers.directory import DirectoryIndex
from pingan.schemas.common import LocalizedText
from pingan.schemas.directory import Department, Directory, Person, Roster
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Category, Grade, Subtype

# Keep in step with the placeholders documented on NotifyStep.template and rendered by handlers.notify.
PLACEHOLDERS = frozenset(
    {"id", "title", "grade", "grade_name", "area", "category", "subtype", "plan", "level", "role"}
)
# libyaml parses the plans about ten times faster than pure Python (load_plans runs on every hot reload); its
# nodes carry the same line and column marks.
FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PLAN_SUFFIXES = (".yaml", ".yml")
DIRECTORY_SUBDIR = "directory"

# (category, subtype or None for "every subtype", grade) -> {hazard or None for "any hazard": plans by id}
IndexKey = tuple[Category, Subtype | None, Grade]
PlanIndex = dict[IndexKey, dict[str | None, tuple[Plan, ...]]]
Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def normalise_hazard(hazard: str | None) -> str | None:
    """Hazards are free text on both sides; compare them case- and space-insensitively."""
    if hazard is None:
        return None
    hazard = hazard.strip().lower()
    return hazard or None


class Severity(StrEnum):
    error = "error"
    warning = "warning"


@dataclass(frozen=True)
class PlanProblem:
    file: str
    line: int  # 1-based; 0 when the problem is not in a file's text (e.g. a missing directory)
    col: int  # 1-based
    message: str
    severity: Severity = Severity.error

    def __str__(self) -> str:
        where = self.file if self.line <= 0 else f"{self.file}:{self.line}:{self.col}"
        tag = "warning: " if self.severity is Severity.warning else ""
        return f"{where}: {tag}{self.message}"


class PlanLoadError(Exception):
    """Every problem found in a plans directory: all files are checked before raising, so one run
    shows the whole list instead of one fix-and-retry round per mistake."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class PlanSet:
    """The loaded plans plus the matching index, built once so each match is a few dict lookups."""

    plans: tuple[Plan, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)  # plan id -> file
    directory: DirectoryIndex = field(default_factory=DirectoryIndex.empty, compare=False)
    index: PlanIndex = field(init=False, repr=False, compare=False)
    hashes: dict[str, str] = field(init=False, repr=False, compare=False)  # plan id -> content_hash()
    _by_id: dict[str, Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [p.id for p in self.plans]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate plan ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        # Frozen, so the derived lookups are set once here and can never drift from `plans`.
        object.__setattr__(self, "index", _build_index(self.plans))
        object.__setattr__(self, "hashes", {p.id: p.content_hash() for p in self.plans})
        object.__setattr__(self, "_by_id", {p.id: p for p in self.plans})

    @classmethod
    def empty(cls) -> PlanSet:
        return cls(())

    @classmethod
    def of(cls, plans: Iterable[Plan], directory: DirectoryIndex | Directory | None = None) -> PlanSet:
        if isinstance(directory, Directory):
            directory = DirectoryIndex.of(directory)
        return cls(tuple(plans), {}, directory or DirectoryIndex.empty())

    def get(self, plan_id: str) -> Plan | None:
        return self._by_id.get(plan_id)

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)


def plan_cells(plan: Plan) -> Iterator[tuple[IndexKey, str | None]]:
    """Every (index key, hazard) bucket a plan is filed under: its subtypes (or None) x grades x hazards."""
    scope = plan.applies_to
    subtypes: list[Subtype | None] = list(dict.fromkeys(scope.subtypes)) or [None]
    hazards = list(dict.fromkeys(normalise_hazard(h) for h in scope.hazards)) or [None]
    for grade in dict.fromkeys(plan.grades):
        for subtype in subtypes:
            for hazard in hazards:
                yield (scope.category, subtype, grade), hazard


def _build_index(plans: Iterable[Plan]) -> PlanIndex:
    buckets: dict[IndexKey, dict[str | None, list[Plan]]] = {}
    for plan in plans:
        for key, hazard in plan_cells(plan):
            buckets.setdefault(key, {}).setdefault(hazard, []).append(plan)
    # Sorted by id so a tie always resolves to the same plan, whatever the file order was.
    return {
        key: {hz: tuple(sorted(ps, key=lambda p: p.id)) for hz, ps in by_hazard.items()}
        for key, by_hazard in buckets.items()
    }


@dataclass(frozen=True)
class SourceDoc:
    """One parsed YAML file: its name and node tree, so any loc inside it can be turned into line:col."""

    file: str
    root: yaml.Node

    def pos(self, loc: Loc) -> tuple[int, int]:
        node = node_at(self.root, loc)
        return node.start_mark.line + 1, node.start_mark.column + 1

    def problem(self, loc: Loc, message: str, severity: Severity = Severity.error) -> PlanProblem:
        return PlanProblem(self.file, *self.pos(loc), message, severity)

    def where(self, loc: Loc) -> str:
        line, col = self.pos(loc)
        return f"{self.file}:{line}:{col}"


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


def load_plans(directory: Path) -> PlanSet:
    """Read plans_dir/*.yaml|*.yml (not recursive, sorted by name) and plans_dir/directory/ into a PlanSet.

    Raises PlanLoadError listing every error (YAML syntax, schema, duplicate keys and ids, template
    placeholders, and every set-level error handlers.lint reports). Warnings do not stop loading.
    """
    # Imported here because lint builds on this module's reader; the checks are cheap dict walks.
    from pingan.handlers.lint import check_read

    read = read_plans(directory)
    errors, _warnings = check_read(read)
    problems = read.problems + errors
    if problems:
        raise PlanLoadError(problems)
    return read.planset()


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
            root, data = _compose(text, FAST_LOADER)
        except yaml.YAMLError:
            # libyaml words its errors differently; the pure-Python parser's message and mark are the documented
            # ones, and a broken file is rare enough to parse twice.
            root, data = _compose(text, yaml.SafeLoader)
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
    found = [PlanProblem(name, *_pos(node), f"duplicate key {key!r}") for key, node in _duplicate_keys(root)]
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


def _compose(text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        # The same node tree gives both the data and the marks, so they cannot disagree.
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The node a pydantic loc points to, or the deepest existing ancestor.

    A missing field points to the mapping that lacks it; loc parts pydantic adds for itself
    (union branch names, validator names) simply stop the walk there. For a field whose value is a
    block (a list or mapping) the key's line is more useful than the first item's, so return the key.
    """
    node, via_key = root, None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node, via_key = child
    if isinstance(node, yaml.ScalarNode) or via_key is None:
        return node
    return via_key


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node, yaml.Node | None] | None:
    """(child node, the key node that led to it if any) for one loc part."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value, key
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], None
    return None


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _duplicate_keys(node: yaml.Node, seen: set[int] | None = None) -> Iterator[tuple[str, yaml.Node]]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # aliases can make the tree a graph
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    yield key.value, key
                keys.add(key.value)
            yield from _duplicate_keys(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, seen)


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
