"""Reading a drill scenario file with errors that name its file and line (`file:line:col: message`), as the plans'
loader does: the YAML is composed to nodes first (nodes carry their source marks), constructed from those same nodes,
validated, and every validation error is mapped back to a node. Pure but for reading the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pingan.handlers.plans.problems import PlanLoadError, PlanProblem
from pingan.handlers.plans.yaml_source import FAST_LOADER, SourceDoc, compose, format_loc
from pingan.schemas.drill import Scenario

# A scenario-wide rule names the inject it is about ("inject to-red: …"): point at that inject's line.
_NAMES_INJECT = re.compile(r"inject (?P<id>[A-Za-z0-9_.-]+)[: ]")


class ScenarioError(PlanLoadError):
    """Every problem of one scenario file, each with its line."""


def read_scenario(path: Path) -> Scenario:
    """The scenario in `path`; raises ScenarioError naming file, line and column of each problem."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([PlanProblem(name, 0, 0, f"cannot read the scenario: {exc}")]) from None
    try:
        root, data = compose(text, FAST_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ScenarioError([PlanProblem(name, line, col, f"not valid YAML: {exc.problem or exc}")]) from None
    if root is None or not isinstance(data, dict):
        raise ScenarioError([PlanProblem(name, 1, 1, "a scenario is a mapping with title and injects")])
    doc = SourceDoc(name, root)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([_problem(doc, data, error) for error in exc.errors()]) from None
    missing = [(n, i.cap.file) for n, i in enumerate(scenario.injects) if i.cap is not None and i.cap.file
               and not _cap_file(path.parent, i.cap.file).is_file()]
    if missing:
        raise ScenarioError([doc.problem(("injects", n, "cap", "file"), f"injects[{n}].cap.file: no file {file!r} "
                                         f"(relative to the scenario, then to the working directory)")
                             for n, file in missing])
    return scenario


def _cap_file(base: Path, file: str) -> Path:
    path = Path(file)
    return base / path if not path.is_absolute() and (base / path).exists() else path


def _problem(doc: SourceDoc, data: dict[str, Any], error: Any) -> PlanProblem:
    loc: tuple[str | int, ...] = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    message = str(error["msg"]).removeprefix("Value error, ")
    named = _NAMES_INJECT.search(message)
    if not loc and named:
        ids = [i.get("id") if isinstance(i, dict) else None for i in data.get("injects") or []]
        if named.group("id") in ids:
            loc = ("injects", ids.index(named.group("id")))
    field = format_loc(loc)
    return doc.problem(loc, f"{field}: {message}" if field else message)
