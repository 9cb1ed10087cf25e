"""What-if replay (`pingan drill replay`): a stored incident re-run as an exercise in a private, sandboxed `pingan up`
against another plan set, and the diff of the two timelines.

The incident's inputs (every report, update and close that triage joined to it, from the outbox) and its people's
commands (acknowledge, escalate, hand over, confirm, close, from the log) become a drill scenario. A private stack
(`pingan up` in a temporary directory: its own broker, database and ports, the given plans, every message to the
sandbox) replays it faster than real time, and the two timelines are compared in plan minutes after each incident was
created.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pingan.drill_runner import DrillRun
from pingan.handlers.drills.replay import as_json, diff, entries, scenario_for
from pingan.store.recorded import recorded
from pingan.store.repository import Store


class IncidentNotFound(LookupError):
    """No stored incident by that id in this store."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateStack:
    """`pingan up` in a temporary directory with the given plans: nothing it does reaches the real stack."""

    def __init__(self, plans: Path, speed: float, workdir: Path) -> None:
        self.port = _free_port()
        self.data = workdir / "data"
        run = uuid.uuid4().hex[:8]
        keep = ("KAFKA_BOOTSTRAP_SERVERS",)  # a cluster may carry the replay too, on topics of its own
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGAN_", "TWILIO_")) or k in keep}
        self.env.update(PINGAN_DATA_DIR=str(self.data), PINGAN_PLANS_DIR=str(plans.resolve()),
                        PINGAN_HTTP_PORT=str(self.port), PINGAN_METRICS_PORT="0",
                        PINGAN_ESCALATION_TIME_SCALE=f"{speed:g}", PINGAN_APP_ID=f"pingan-replay-{run}",
                        PINGAN_TOPIC_PREFIX=f"replay-{run}.", PYTHONUNBUFFERED="1")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "stack.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateStack:
        # The stack is the `pingan` command run as a program, not imported: this module stays beneath the CLI.
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "pingan.cli.main", "up"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the replay stack exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the replay stack did not answer in 90 s; see {self.log}")

    def __exit__(self, *_: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def tokens(self) -> dict[str, str]:
        return json.loads((self.data / "intake-tokens.json").read_text())

    def coordinator_token(self, plans: Path) -> str:
        """A drill coordinator's personal token in the private stack's own database (it plays the recorded people's
        commands): an account for the directory's first person, with a random password nobody needs."""
        import secrets

        from pingan.handlers.plans.load import load_plans
        from pingan.store.identity import IdentityStore

        directory = load_plans(plans).directory
        if not directory.people:
            raise RuntimeError(f"{plans}: the directory has no people to run the replay as")
        person = sorted(directory.people)[0]
        private = Store(f"sqlite:///{(self.data / 'pingan.db').resolve()}")
        try:
            identity = IdentityStore(private.engine)
            identity.add_user(directory, person, ["drill_coordinator"], secrets.token_urlsafe(24), "system:replay")
            return identity.create_token(person, ["drill_coordinator"], "system:replay", "drill replay")[1]
        finally:
            private.close()


def replay(store: Store, incident_id: str, plans: Path, speed: float, recorded_speed: float,
           watch_min: float | None, keep: Path | None, echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Replay the stored incident against `plans` at `speed`; the diff and its figures as JSON-ready data.

    Raises IncidentNotFound, NothingToReplay (no recorded inputs) or DrillRefused (the private stack refused the
    run); `echo` hears what is about to be replayed before the stack starts."""
    found = recorded(store, incident_id)
    if found is None:
        raise IncidentNotFound(f"incident {incident_id!r} not found in "
                               f"{store.engine.url.render_as_string(hide_password=True)}")
    incident, timeline = found.incident, found.timeline
    scenario = scenario_for(incident, found.inputs, timeline, recorded_speed, watch_min)
    echo(f"replaying {incident['id']} ({len(scenario.injects)} inputs, {len(scenario.commands)} commands) "
         f"against {plans} at x{speed:g}, {scenario.duration_min:g} plan minutes ≈ "
         f"{scenario.duration_min * 60 / speed:.0f} s")
    with tempfile.TemporaryDirectory(prefix="pingan-replay-") as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with PrivateStack(plans, speed, workdir) as stack:
            drill = DrillRun(scenario, plans, stack.url, stack.tokens, speed,
                             person_token=stack.coordinator_token(plans))
            drill.run()
            first = drill.tracked.get(scenario.injects[0].id)
            body = drill.incident(first.incident_id) if first and first.incident_id else None
    replayed = body["timeline"] if body else []
    rows = as_json(diff(entries(timeline, recorded_speed), entries(replayed, speed)))
    return {"incident_id": incident["id"], "replay_incident_id": body["incident"]["id"] if body else None,
            "plans": str(plans), "speed": speed, "recorded_speed": recorded_speed,
            "inputs": len(scenario.injects), "commands": [c.model_dump(mode="json") for c in scenario.commands],
            "diff": rows, "changed": sum(1 for r in rows if r["change"] != "same")}
