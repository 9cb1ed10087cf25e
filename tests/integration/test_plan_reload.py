"""Hot reload against a running worker: a changed plan is taken within 5 s; a broken set is refused whole."""

import re
import shutil
import time
from pathlib import Path

from pingan.plans import PLANS_DIR
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from tests.fixtures.stack import pingan_env, wait_for


def activated_version(store: Store, incident_id: str) -> int | None:
    for action in store.timeline(incident_id):
        if action.kind.value == "plan_activated":
            return action.plan_version
    return None


def test_changed_plan_is_reloaded_and_a_broken_one_refused(tmp_path: Path, broker_bootstrap: str,
                                                          worker_factory) -> None:  # type: ignore[no-untyped-def]
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_PLANS_DIR=str(plans))
    store = Store(f"sqlite:///{tmp_path / 'pingan.db'}")
    worker = worker_factory(env)
    raw = env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"

    def report(n: int) -> str:
        return store.accept(IncidentReport(category="accident_disaster", subtype="fire", grade="III",
                                           title=f"仓库起火 {n}", dedup_key=f"reload-{n}"), raw).incident_id

    first = report(0)
    try:
        assert wait_for(lambda: activated_version(store, first), 60, 0.1, "first activation") == 1
    except AssertionError:
        raise AssertionError(worker.log_tail()) from None

    fire = plans / "building-fire.yaml"
    fire.write_text(re.sub(r"(?m)^version: 1$", "version: 2", fire.read_text(encoding="utf-8")), encoding="utf-8")
    edited = time.monotonic()
    n = 1
    while True:  # keep reporting until an incident activates version 2
        incident_id = report(n)
        version = wait_for(lambda i=incident_id: activated_version(store, i), 30, 0.05, "activation")
        if version == 2:
            break
        assert time.monotonic() - edited < 5, "the changed plan was not taken within 5 s"
        n += 1
    assert time.monotonic() - edited < 5

    # A broken file (bad indentation) is refused as a whole; version 2 keeps matching.
    fire.write_text(fire.read_text(encoding="utf-8").replace("version: 2", "version: 3\n  oops: [", 1),
                    encoding="utf-8")
    wait_for(lambda: "plan reload refused" in worker.log_path.read_text(errors="replace"), 10, 0.2,
             "the refusal in the worker log")
    later = report(100)
    assert wait_for(lambda: activated_version(store, later), 30, 0.1, "activation after the broken edit") == 2
    assert "building-fire.yaml:" in worker.log_path.read_text(errors="replace")  # the lint error names the file
    store.close()
