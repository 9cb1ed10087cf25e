"""The hot reload's starting point: a plan edited after the worker read its plans but before the watcher first looked
is reloaded, not taken as the baseline (it was never served; tests/kafka test_plan_hot_reload met this race)."""

import shutil
import time
from pathlib import Path

from pingan.plans import PLANS_DIR
from pingan.streams.plan_reload import PlanWatcher


def _copy(tmp_path: Path) -> Path:
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return plans


def test_an_edit_between_the_load_and_the_watcher_is_reloaded(tmp_path: Path) -> None:
    plans = _copy(tmp_path)
    loaded_ns = time.time_ns()  # the worker reads its plans here…
    fire = plans / "building-fire.yaml"
    fire.write_text(fire.read_text(encoding="utf-8").replace("\nversion: 1\n", "\nversion: 2\n"), encoding="utf-8")
    taken = []
    watcher = PlanWatcher(plans, on_reload=taken.append, loaded_since_ns=loaded_ns)  # …and starts watching here
    assert watcher.check() is True
    assert taken[0].get("building-fire").version == 2


def test_nothing_changed_since_the_load_is_no_reload(tmp_path: Path) -> None:
    plans = _copy(tmp_path)
    watcher = PlanWatcher(plans, on_reload=lambda _: None, loaded_since_ns=time.time_ns())
    assert watcher.check() is False
