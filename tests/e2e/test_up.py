"""`pingan up` as a user runs it: HTTP intake, CLI report/timeline, SIGKILL of the whole tree, log verify."""

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from pingan.handlers.channels.console import read_sink
from tests.fixtures.stack import Stack, cli, console_kinds, pingan_env, timeline_kinds, wait_for


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Stack(tmp_path)
    s.up()
    yield s
    s.stop()


FIRE = {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "仓库起火"}


def test_cli_report_reaches_delivered(stack: Stack) -> None:
    result = cli(stack.env, "report", "--category", "accident_disaster", "--subtype", "fire", "--grade", "III",
                 "--title", "仓库起火")
    assert result.returncode == 0, result.stderr
    incident_id = result.stdout.strip()
    wait_for(lambda: "delivered" in timeline_kinds(stack.env, incident_id), 30, 0.2, "delivered")
    body = stack.incident(incident_id)
    assert body is not None
    assert console_kinds(body["timeline"]) == ["created", "plan_activated", "notified", "delivered"]
    out = cli(stack.env, "timeline", incident_id).stdout
    assert "plan=building-fire@v" in out and "channel=console" in out
    # Twilio is not configured in this stack: the plan's SMS steps are logged as failed, never silently dropped.
    failed = [a for a in body["timeline"] if a["kind"] == "failed"]
    assert failed and all("not configured" in a["details"]["reason"] for a in failed)


def test_http_report_and_422(stack: Stack) -> None:
    response = stack.post("/v1/incidents", json=FIRE)
    assert response.status_code == 202
    incident_id = response.json()["id"]
    body = wait_for(lambda: stack.delivered(incident_id), 30, 0.2, "delivered over HTTP")
    assert console_kinds(body["timeline"]) == ["created", "plan_activated", "notified", "delivered"]
    assert body["timeline"][1]["details"]["plan_hash"]

    bad = stack.post("/v1/incidents", json={**FIRE, "grade": "V"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "grade"
    assert "grade" in bad.json()["error"]
    listing = stack.get("/v1/incidents", params={"category": "accident_disaster"}).json()
    assert listing["total"] >= 1 and listing["items"][0]["id"] == incident_id


def test_up_says_ready_once_and_readyz_agrees(stack: Stack) -> None:
    assert stack.proc is not None
    log = stack.proc.log_path
    ready = wait_for(lambda: [line for line in log.read_text().splitlines() if line.startswith("pingan up: ready")],
                     60, 0.1, "pingan up's ready line")
    assert "/readyz" in ready[0]
    assert httpx.get(stack.url + "/readyz", timeout=5).json()["status"] == "ready"
    incident_id = stack.post("/v1/incidents", json=FIRE).json()["id"]
    wait_for(lambda: stack.delivered(incident_id), 30, 0.2, "delivered after ready")
    assert [line for line in log.read_text().splitlines() if line.startswith("pingan up: ready")] == ready


def test_tail_actions_reads_the_log_from_the_store(stack: Stack) -> None:
    incident_id = stack.post("/v1/incidents", json={**FIRE, "title": "车间起火"}).json()["id"]
    wait_for(lambda: stack.delivered(incident_id), 30, 0.2, "delivered")
    out = cli(stack.env, "tail", "actions", "--no-follow").stdout.splitlines()
    mine = [json.loads(line.split(" ", 2)[2]) for line in out if line.split(" ", 2)[1:2] == [incident_id]]
    assert [a["kind"] for a in mine][:2] == ["created", "plan_activated"] and "delivered" in [a["kind"] for a in mine]
    seqs = [int(line.split(" ", 1)[0].removeprefix("log:")) for line in out]
    assert seqs == sorted(seqs) and seqs[0] == 1  # the whole log, in order, from its first entry
    assert len(cli(stack.env, "tail", "actions", "--max", "2").stdout.splitlines()) == 2


def test_sigkill_after_202_still_delivers_exactly_once(stack: Stack) -> None:
    response = stack.post("/v1/incidents", json={**FIRE, "title": "厂房起火"})
    assert response.status_code == 202
    assert stack.proc is not None
    stack.proc.kill_tree()  # broker, worker and API all die at once; the broker's memory is gone
    incident_id = response.json()["id"]
    stack.up()
    wait_for(lambda: stack.delivered(incident_id), 60, 0.2, "delivered after restart")
    sent = [r for r in read_sink(stack.sink) if r["incident_id"] == incident_id]
    assert len(sent) == 1, sent


def test_log_verify_names_a_changed_row(stack: Stack) -> None:
    response = stack.post("/v1/incidents", json=FIRE)
    incident_id = response.json()["id"]
    wait_for(lambda: stack.delivered(incident_id), 30, 0.2, "delivered")
    ok = cli(stack.env, "log", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    db = Path(stack.env["PINGAN_DATA_DIR"]) / "pingan.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE actions SET actor = 'mallory' WHERE seq = 2")
    bad = cli(stack.env, "log", "verify")
    assert bad.returncode == 1 and "seq 2" in bad.stderr, bad.stderr


def test_schema_export(tmp_path: Path) -> None:
    env = pingan_env(tmp_path)
    result = cli(env, "schema", "export", str(tmp_path / "schemas"))
    assert result.returncode == 0, result.stderr
    incident = json.loads((tmp_path / "schemas" / "incident.schema.json").read_text())
    assert "dedup_key" in incident["properties"] and "grade" in incident["properties"]


def test_every_verb_has_help(tmp_path: Path) -> None:
    env = pingan_env(tmp_path)
    for verb in (["up"], ["worker"], ["api"], ["report"], ["timeline"], ["tail"], ["log", "verify"],
                 ["schema", "export"]):
        result = cli(env, *verb, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, (verb, result.stderr)


def test_a_dead_broker_is_restarted_and_work_goes_on(stack: Stack) -> None:
    import os
    import signal

    first = stack.post("/v1/incidents", json=FIRE).json()["id"]
    wait_for(lambda: stack.delivered(first), 30, 0.2, "first delivered")
    broker = stack.child_pid(b"tansu")
    assert broker is not None, "no tansu child of pingan up"
    os.kill(broker, signal.SIGKILL)  # the broker's memory, topics and offsets are gone
    second = stack.post("/v1/incidents", json={**FIRE, "title": "配电房起火"}).json()["id"]
    wait_for(lambda: stack.delivered(second), 60, 0.2, "delivered after the broker restart")
    assert "broker died" in (stack.proc.log_tail(200) if stack.proc else "")
    for incident_id in (first, second):
        assert len([r for r in read_sink(stack.sink) if r["incident_id"] == incident_id]) == 1
