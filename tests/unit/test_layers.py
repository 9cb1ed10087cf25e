"""The layering rule of docs/architecture.md, enforced by reading every module's imports with `ast`.

Layers, bottom to top; a module may import its own layer and those beneath, never one above:

    0 data       pingan (the root), pingan.schemas, pingan.plans (the shipped YAML)
    1 settings   pingan.settings
    2 handlers   pingan.handlers (pure decisions; channels/ is their only I/O)
    3 store      pingan.store
    4 services   pingan.bootstrap, pingan.commands, pingan.metrics, pingan.metrics_scrape, pingan.drill_runner,
                 pingan.drill_intake, pingan.log_witness
    5 streams    pingan.streams
    6 processes  pingan.watchdog, pingan.supervisor, pingan.drill_replay
    7 edges      pingan.web, pingan.cli

Inside handlers/, sub-packages import one way: plans, audit and access import no other sub-package, channels none,
incidents only plans, drills only plans and incidents, trends none, sitreps only plans and incidents. Handlers
other than channels import no I/O library.
No two modules import each other, directly or round a circle (imports under `if TYPE_CHECKING:` excepted).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("data", ("pingan.schemas", "pingan.plans")),
    ("settings", ("pingan.settings",)),
    ("handlers", ("pingan.handlers",)),
    ("store", ("pingan.store",)),
    ("services", ("pingan.bootstrap", "pingan.commands", "pingan.metrics", "pingan.metrics_scrape",
                  "pingan.drill_runner", "pingan.drill_intake", "pingan.log_witness", "pingan.releases",
                  "pingan.sitreps", "pingan.sitrep_daily")),
    ("streams", ("pingan.streams",)),
    ("processes", ("pingan.watchdog", "pingan.supervisor", "pingan.drill_replay")),
    ("edges", ("pingan.web", "pingan.cli")),
]

# handlers' sub-packages: which others each may import.
HANDLER_DOMAINS: dict[str, set[str]] = {
    "plans": set(),
    "audit": set(),
    "access": set(),
    "channels": set(),
    "incidents": {"plans"},
    "drills": {"plans", "incidents"},
    "releases": {"plans", "incidents"},
    "trends": set(),  # issue 18's detectors: pure arithmetic over report counts
    "sitreps": {"plans", "incidents"},  # issue 17's situation reports: figures against the plans' targets
}

# Same-layer imports that are still forbidden: the console and the API never reach into the CLI.
FORBIDDEN: list[tuple[str, str]] = [("pingan.web", "pingan.cli")]

# Libraries that reach a network, a database, a process or a framework: the edges' business, not a decision's.
IO_LIBRARIES = {
    "aiokafka", "aiosmtplib", "asyncio", "faust", "fastapi", "http", "httpx", "kafka", "psycopg", "requests",
    "smtplib", "socket", "sqlalchemy", "starlette", "subprocess", "twilio", "urllib", "uvicorn",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a pingan module, or a top-level library name
    file: Path
    line: int
    type_checking: bool


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """pyproject's setuptools package-dir: package name -> folder."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    return {name: root / folder for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def modules(dirs: Mapping[str, Path]) -> dict[str, Path]:
    """Every module of the listed packages (not their unlisted sub-folders, which are other packages' or data)."""
    found: dict[str, Path] = {}
    for package, folder in dirs.items():
        for file in sorted(folder.glob("*.py")):
            found[package if file.stem == "__init__" else f"{package}.{file.stem}"] = file
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str, file: Path, known: Mapping[str, Path]) -> Iterator[Import]:
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    guarded = _type_checking_lines(tree)
    package = module if file.stem == "__init__" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from pingan import metrics` imports the module pingan.metrics; `from x.y import name` imports x.y.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in dict.fromkeys(names):
            if name.split(".")[0] != "pingan":
                name = name.split(".")[0]
            else:
                while name not in known and "." in name:
                    name = name.rpartition(".")[0]
            yield Import(module, name, file, node.lineno, node.lineno in guarded)


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        return 0 if module == "pingan" else None
    return best[1]


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def handler_domain(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["pingan", "handlers"] else None


def violations(known: Mapping[str, Path]) -> list[str]:
    """Every broken rule, as `file:line: importer imports imported (why)`."""
    found: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, file in known.items():
        mine = layer_of(module)
        for imp in imports_of(module, file, known):
            where = f"{imp.file.relative_to(ROOT) if imp.file.is_relative_to(ROOT) else imp.file}:{imp.line}"
            if imp.imported in known:
                if not imp.type_checking and imp.imported != module:
                    graph[module].add(imp.imported)
                theirs = layer_of(imp.imported)
                if mine is None or theirs is None:
                    found.append(f"{where}: {module} or {imp.imported} is in no layer (add it to LAYERS)")
                elif theirs > mine:
                    found.append(f"{where}: {module} ({LAYERS[mine][0]}) imports {imp.imported} "
                                 f"({LAYERS[theirs][0]}), a layer above it")
                for low, high in FORBIDDEN:
                    if _under(module, low) and _under(imp.imported, high):
                        found.append(f"{where}: {module} imports {imp.imported} ({low} never imports {high})")
                domain, other = handler_domain(module), handler_domain(imp.imported)
                if domain and other and domain != other and other not in HANDLER_DOMAINS.get(domain, set()):
                    found.append(f"{where}: handlers.{domain} imports handlers.{other} ({module} -> {imp.imported})")
            elif (handler_domain(module) not in (None, "channels") or module == "pingan.handlers") \
                    and imp.imported in IO_LIBRARIES:
                found.append(f"{where}: {module} imports the I/O library {imp.imported}; handlers decide, "
                             f"the edges do I/O")
    found.extend(f"import circle: {' -> '.join(cycle)}" for cycle in circles(graph))
    return found


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_layers_hold() -> None:
    known = modules(package_dirs())
    assert len(known) > 80, "the module walk found too little to be checking anything"
    assert violations(known) == []


def test_every_module_is_in_a_layer() -> None:
    assert [m for m in modules(package_dirs()) if layer_of(m) is None] == []


# The checker itself must be able to fail: a small tree with one broken rule of each kind.
FAKE_TREE = {
    "schemas/__init__.py": "",
    "schemas/model.py": "from pingan.store.db import x\n",  # upward
    "handlers/__init__.py": "",
    "handlers/plans/__init__.py": "",
    "handlers/plans/lint.py": "from pingan.handlers.plans.loader import read\n",
    "handlers/plans/loader.py": "from pingan.handlers.plans.lint import check\nimport sqlalchemy\n",  # circle, I/O
    "handlers/incidents/__init__.py": "",
    "handlers/incidents/triage.py": "from pingan.handlers.drills import scoring\n",  # sideways, wrong way
    "handlers/drills/__init__.py": "",
    "handlers/drills/scoring.py": "import httpx\n",
    "handlers/channels/__init__.py": "",
    "handlers/channels/sms.py": "import twilio\n",  # allowed: channels are the I/O
    "store/__init__.py": "",
    "store/db.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pingan.web import app\n",
    "web/__init__.py": "",
    "web/app.py": "from pingan.store import db\nfrom pingan.cli import main\n",  # web never imports cli
    "cli/__init__.py": "",
    "cli/main.py": "from pingan.web import app\n",  # allowed: `pingan api` starts the app
}


@pytest.fixture
def fake_tree(tmp_path: Path) -> dict[str, Path]:
    for name, text in FAKE_TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    dirs = {"pingan.schemas": "schemas", "pingan.handlers": "handlers", "pingan.handlers.plans": "handlers/plans",
            "pingan.handlers.incidents": "handlers/incidents", "pingan.handlers.drills": "handlers/drills",
            "pingan.handlers.channels": "handlers/channels", "pingan.store": "store", "pingan.web": "web",
            "pingan.cli": "cli"}
    return modules({name: tmp_path / folder for name, folder in dirs.items()})


def test_the_checker_names_each_broken_rule(fake_tree: dict[str, Path]) -> None:
    found = "\n".join(violations(fake_tree))
    assert "pingan.schemas.model (data) imports pingan.store.db (store), a layer above it" in found
    assert "pingan.store.db (store) imports pingan.web.app (edges)" in found  # TYPE_CHECKING still counts here
    assert "handlers.incidents imports handlers.drills" in found
    assert "pingan.handlers.plans.loader imports the I/O library sqlalchemy" in found
    assert "pingan.handlers.drills.scoring imports the I/O library httpx" in found
    assert "import circle: pingan.handlers.plans.lint -> pingan.handlers.plans.loader -> " \
           "pingan.handlers.plans.lint" in found
    assert "twilio" not in found  # channels may do I/O
    assert "pingan.web.app imports pingan.cli.main (pingan.web never imports pingan.cli)" in found
    assert "pingan.cli.main imports" not in found
    assert "import circle: pingan.cli.main -> pingan.web.app -> pingan.cli.main" in found
    assert len(violations(fake_tree)) == 8


def test_a_forbidden_import_added_to_the_real_tree_fails(tmp_path: Path) -> None:
    """The real tree plus one upward import from a handler is caught, with its file and line."""
    known = modules(package_dirs())
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text('"""A decision that reads the database itself."""\n\nfrom pingan.store.repository import Store\n')
    known["pingan.handlers.incidents.sneaky"] = sneaky
    before = violations(modules(package_dirs()))
    assert violations(known) == [*before, f"{sneaky}:3: pingan.handlers.incidents.sneaky (handlers) imports "
                                          "pingan.store.repository (store), a layer above it"]
