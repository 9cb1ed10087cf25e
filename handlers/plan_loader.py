"""Load the YAML response plans, with errors that name the file, line and field.

Plans are written by hand in the emergency office; a mistake must point at the line to fix, not at a
pydantic loc tuple. So each file is composed to YAML nodes first (nodes carry their source marks),
constructed from those same nodes, validated, and every validation error is mapped back to a node.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Category, Grade, Subtype

# Keep in step with the placeholders documented on NotifyStep.template and rendered by handlers.notify.
PLACEHOLDERS = frozenset({"id", "title", "grade", "grade_name", "area", "category", "subtype", "plan"})

# (category, subtype or None for "every subtype", grade) -> {hazard or None for "any hazard": plans by id}
IndexKey = tuple[Category, Subtype | None, Grade]
PlanIndex = dict[IndexKey, dict[str | None, tuple[Plan, ...]]]


def normalise_hazard(hazard: str | None) -> str | None:
    """Hazards are free text on both sides; compare them case- and space-insensitively."""
    if hazard is None:
        return None
    hazard = hazard.strip().lower()
    return hazard or None


@dataclass(frozen=True)
class PlanProblem:
    file: str
    line: int  # 1-based; 0 when the problem is not in a file's text (e.g. a missing directory)
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


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
    index: PlanIndex = field(init=False, repr=False, compare=False)
    _by_id: dict[str, Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [p.id for p in self.plans]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate plan ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        # Frozen, so the derived lookups are set once here and can never drift from `plans`.
        object.__setattr__(self, "index", _build_index(self.plans))
        object.__setattr__(self, "_by_id", {p.id: p for p in self.plans})

    @classmethod
    def empty(cls) -> PlanSet:
        return cls(())

    @classmethod
    def of(cls, plans: Iterable[Plan]) -> PlanSet:
        return cls(tuple(plans))

    def get(self, plan_id: str) -> Plan | None:
        return self._by_id.get(plan_id)

    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)


def _build_index(plans: Iterable[Plan]) -> PlanIndex:
    buckets: dict[IndexKey, dict[str | None, list[Plan]]] = {}
    for plan in plans:
        scope = plan.applies_to
        subtypes: list[Subtype | None] = list(dict.fromkeys(scope.subtypes)) or [None]
        hazards = list(dict.fromkeys(normalise_hazard(h) for h in scope.hazards)) or [None]
        for grade in dict.fromkeys(scope.grades):
            for subtype in subtypes:
                by_hazard = buckets.setdefault((scope.category, subtype, grade), {})
                for hazard in hazards:
                    by_hazard.setdefault(hazard, []).append(plan)
    # Sorted by id so a tie always resolves to the same plan, whatever the file order was.
    return {
        key: {hz: tuple(sorted(ps, key=lambda p: p.id)) for hz, ps in by_hazard.items()}
        for key, by_hazard in buckets.items()
    }


def load_plans(directory: Path) -> PlanSet:
    """Read every *.yaml / *.yml in `directory` (not recursive, sorted by name) into a PlanSet.

    Raises PlanLoadError listing every problem: YAML syntax, schema violations, unknown template
    placeholders and plan ids defined in more than one file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PlanLoadError([PlanProblem(str(directory), 0, 0, "plans directory does not exist")])
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    problems: list[PlanProblem] = []
    plans: list[Plan] = []
    first_seen: dict[str, PlanProblem] = {}  # plan id -> where its id was first defined
    for path in files:
        loaded, file_problems = _load_file(path)
        problems.extend(file_problems)
        if loaded is None:
            continue
        plan, id_mark = loaded
        if plan.id in first_seen:
            first = first_seen[plan.id]
            problems.append(PlanProblem(id_mark.file, id_mark.line, id_mark.col,
                                        f"id: duplicate plan id {plan.id!r} (first defined at "
                                        f"{first.file}:{first.line}:{first.col})"))
            continue
        first_seen[plan.id] = id_mark
        plans.append(plan)
    if problems:
        raise PlanLoadError(problems)
    return PlanSet(tuple(plans), {pid: mark.file for pid, mark in first_seen.items()})


def _load_file(path: Path) -> tuple[tuple[Plan, PlanProblem] | None, list[PlanProblem]]:
    """Returns ((plan, where its id is), problems); the plan is None when there are problems."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [PlanProblem(name, 1, 1, f"cannot read: {exc}")]
    loader = yaml.SafeLoader(text)
    try:
        # The same node tree gives both the data and the marks, so they cannot disagree.
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context:
            started = f" started at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            detail += f" ({exc.context}{started})"
        return None, [PlanProblem(name, line, col, f"YAML syntax error: {detail}")]
    except yaml.YAMLError as exc:
        return None, [PlanProblem(name, 1, 1, f"YAML error: {exc}")]
    finally:
        loader.dispose()
    if root is None or not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        return None, [PlanProblem(name, 1, 1, "expected one plan: a YAML mapping with id, version, title, …")]

    # PyYAML silently keeps the last of two equal keys; in a plan that would quietly drop, say, a grade list.
    problems = [PlanProblem(name, *_pos(node), f"duplicate key {key!r}")
                for key, node in _duplicate_keys(root)]
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            node = _node_at(root, loc)
            where = _format_loc(loc)
            problems.append(PlanProblem(name, *_pos(node), f"{where}: {err['msg']}" if where else err["msg"]))
        return None, problems
    problems.extend(_template_problems(name, root, plan))
    if problems:
        return None, problems
    return (plan, PlanProblem(name, *_pos(_node_at(root, ("id",))), "")), []


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
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


def _format_loc(loc: tuple[Any, ...]) -> str:
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


def _template_problems(name: str, root: yaml.Node, plan: Plan) -> list[PlanProblem]:
    """A misspelt placeholder would reach a commander's phone as raw braces; catch it at load time."""
    problems: list[PlanProblem] = []
    for i, step in enumerate(plan.notify):
        for lang in ("zh", "en"):
            text = getattr(step.template, lang)
            if text is None:
                continue
            loc = ("notify", i, "template", lang)
            where = _format_loc(loc)
            try:
                parsed = list(string.Formatter().parse(text))
            except ValueError as exc:
                problems.append(PlanProblem(name, *_pos(_node_at(root, loc)), f"{where}: {exc}"))
                continue
            # handlers.notify substitutes bare {name} only; anything fancier would reach the reader raw.
            bad = sorted({"{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                          for _, f, spec, conv in parsed
                          if f is not None and (f not in PLACEHOLDERS or spec or conv)})
            if bad:
                allowed = " ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                message = f"{where}: unknown placeholder(s) {' '.join(bad)}; allowed: {allowed}"
                problems.append(PlanProblem(name, *_pos(_node_at(root, loc)), message))
    return problems
