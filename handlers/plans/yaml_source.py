"""YAML documents with their source marks, so that a pydantic error loc becomes `file:line:col`.

Plans are written by hand in the emergency office; a mistake must point at the line to fix, not at a
pydantic loc tuple. So each file is composed to YAML nodes first (nodes carry their source marks),
constructed from those same nodes, validated, and every validation error is mapped back to a node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from pingan.handlers.plans.problems import PlanProblem, Severity

# libyaml parses the plans about ten times faster than pure Python (load_plans runs on every hot reload); its
# nodes carry the same line and column marks.
FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)



Loc = tuple[str | int, ...]



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



def compose(text: str, loader_class: Any) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        # The same node tree gives both the data and the marks, so they cannot disagree.
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()



def node_pos(node: yaml.Node) -> tuple[int, int]:
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



def duplicate_keys(node: yaml.Node, seen: set[int] | None = None) -> Iterator[tuple[str, yaml.Node]]:
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
            yield from duplicate_keys(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from duplicate_keys(item, seen)
