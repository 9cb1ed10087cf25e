"""`pingan drill replay --from-log INCIDENT_ID --plans DIR`: what a changed plan set would have done with a past
incident.

The incident's inputs (every report, update and close that triage joined to it, from the outbox) and its people's
commands (acknowledge, escalate, hand over, confirm, close, from the log) become a drill scenario. A private,
sandboxed stack (`pingan up` in a temporary directory: its own broker, database and ports, the plans of --plans, every
message to the sandbox) replays it as an exercise, faster than real time, and the two timelines are compared in plan
minutes after each incident was created.
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
from pathlib import Path
from typing import Any

import httpx
import typer

from pingan.handlers.drills.replay import RecordedInput, as_json, diff, entries, recorded_commands, recorded_injects
from pingan.schemas.drill import Scenario

CHANGE_LABEL = {"same": "=", "earlier": "EARLIER", "later": "LATER", "only_original": "GONE", "only_replay": "NEW"}


def recorded(incident_id: str) -> tuple[dict[str, Any], list[RecordedInput], list[dict[str, Any]]]:
    """(incident, inputs, timeline) of a stored incident, from the database of this environment's settings."""
    from sqlalchemy import select

    from pingan.cli.runtime import fail, store
    from pingan.schemas.events import RawEvent
    from pingan.store.tables import outbox, triage_events

    db = store()
    resolved = db.resolve_incident_id(incident_id)
    incident = db.get_incident(resolved) if resolved else None
    if incident is None:
        fail(f"incident {incident_id!r} not found in {db.engine.url.render_as_string(hide_password=True)}")
    with db.engine.connect() as conn:
        payloads = conn.scalars(select(outbox.c.payload).join(
            triage_events, triage_events.c.event_id == outbox.c.event_id).where(
            triage_events.c.incident_id == incident.id)).all()
    events = [RawEvent.model_validate_json(p) for p in payloads]
    inputs = [RecordedInput(e.received_at, e.kind, e.report) for e in events]
    timeline = [a.model_dump(mode="json") for a in db.timeline(incident.id)]
    return incident.model_dump(mode="json"), inputs, timeline


def scenario_for(incident: dict[str, Any], inputs: list[RecordedInput], timeline: list[dict[str, Any]],
                 recorded_speed: float, watch_min: float | None) -> Scenario:
    injects = recorded_injects(inputs, recorded_speed)
    if not injects:
        raise typer.BadParameter(f"incident {incident['id']} has no recorded inputs in the outbox")
    span = max((e.minute for e in entries(timeline, recorded_speed)), default=0.0)
    commands = recorded_commands(timeline, injects[0].id, recorded_speed)
    last_command = max((c.after_min for c in commands), default=0.0)
    watch = watch_min if watch_min is not None else max(span, last_command) - injects[-1].at_min + 2.0
    return Scenario(title=f"复盘 {incident['id']}: {incident['title']}", title_en=f"What-if replay of {incident['id']}",
                    injects=injects, commands=commands, watch_min=max(1.0, watch))


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


def print_diff(rows: list[dict[str, Any]], echo: Any = typer.echo) -> None:
    echo(f"{'change':8} {'original':>9} {'replay':>9} {'Δ min':>7}  {'entry':14} what")
    for row in rows:
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"
        echo(f"{CHANGE_LABEL[row['change']]:8} {fmt(row['original_min']):>9} {fmt(row['replay_min']):>9} "
             f"{fmt(row['delta_min']):>7}  {row['kind']:14} {row['key']}" + (f"  [{row['detail']}]"
                                                                               if row["detail"] else ""))


def replay(incident_id: str, plans: Path, speed: float, recorded_speed: float, watch_min: float | None,
           json_out: Path | None, keep: Path | None) -> dict[str, Any]:
    from pingan.cli.drill_engine import DrillRun

    incident, inputs, timeline = recorded(incident_id)
    scenario = scenario_for(incident, inputs, timeline, recorded_speed, watch_min)
    typer.echo(f"replaying {incident['id']} ({len(scenario.injects)} inputs, {len(scenario.commands)} commands) "
               f"against {plans} at x{speed:g}, {scenario.duration_min:g} plan minutes ≈ "
               f"{scenario.duration_min * 60 / speed:.0f} s")
    with tempfile.TemporaryDirectory(prefix="pingan-replay-") as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with PrivateStack(plans, speed, workdir) as stack:
            drill = DrillRun(scenario, plans, stack.url, stack.tokens, speed, echo=lambda *a, **k: None)
            drill.run()
            first = drill.tracked.get(scenario.injects[0].id)
            body = drill.incident(first.incident_id) if first and first.incident_id else None
    replayed = body["timeline"] if body else []
    rows = as_json(diff(entries(timeline, recorded_speed), entries(replayed, speed)))
    result = {"incident_id": incident["id"], "replay_incident_id": body["incident"]["id"] if body else None,
              "plans": str(plans), "speed": speed, "recorded_speed": recorded_speed,
              "inputs": len(scenario.injects), "commands": [c.model_dump(mode="json") for c in scenario.commands],
              "diff": rows, "changed": sum(1 for r in rows if r["change"] != "same")}
    if json_out:
        json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result
