"""Put a plans directory in force: read it, lint the set, and refuse it whole on any error."""

from __future__ import annotations

from pathlib import Path

from pingan.handlers.plans.lint import check_read
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanLoadError
from pingan.handlers.plans.reader import read_plans


def load_plans(directory: Path) -> PlanSet:
    """Read plans_dir/*.yaml|*.yml (not recursive, sorted by name) and plans_dir/directory/ into a PlanSet.

    Raises PlanLoadError listing every error (YAML syntax, schema, duplicate keys and ids, template
    placeholders, and every set-level error handlers.lint reports). Warnings do not stop loading.
    """
    # Imported here because lint builds on this module's reader; the checks are cheap dict walks.

    read = read_plans(directory)
    errors, _warnings = check_read(read)
    problems = read.problems + errors
    if problems:
        raise PlanLoadError(problems)
    return read.planset()
