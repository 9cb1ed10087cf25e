"""`pingan release …` as the duty room runs it (issue 17), on a real SQLite store holding a grade II
typhoon taken through triage and the response: the drafter's own approval and a publication without approval exit
1 and are logged; the plan's public information officer drafts, its commander approves, the officer publishes; an
update references the alert, an all-clear both; `pingan log verify` passes after. (Some 25 CLI runs: SQLite only;
the same service is tested on PostgreSQL in tests/integration/test_releases.py and over HTTP in test_release_http.)"""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage

PLANS = load_plans(PLANS_DIR)
PIO, COMMANDER = "xiang-yun", "huang-liping"  # typhoon grade II: public_information and commander


def typhoon(url: str) -> str:
    store = Store(url)
    try:
        accepted = store.accept(IntakeItem(report=IncidentReport(
            category="natural_disaster", subtype="meteorological", hazard="typhoon", grade="II", title="台风“海葵”",
            dedup_key="typhoon-cli", location={"area_name": "唐家湾镇"})), "raw")
        for row in store.unpublished():
            store.mark_published([row.event_id])
            for event in triage_stage(store, RawEvent.model_validate_json(row.payload),
                                      timedelta(hours=1)).incident_events:
                response_stage(store, PLANS, event, time_scale=1.0)
        found = store.resolve_incident_id(accepted.incident_id)
        assert found
        return found
    finally:
        store.close()


def pingan(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PINGAN_DATA_DIR": str(tmp / "var"),
           "PINGAN_DATABASE_URL": url, "PINGAN_CAP_SENDER": "pingan@tangjiawan.example"}
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def release_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[0]


def test_release_draft_approve_publish_update_all_clear(tmp_path: Path, sqlite_url: str) -> None:
    db_url = sqlite_url
    incident = typhoon(db_url)

    first = release_id(pingan(tmp_path, db_url, "release", "draft", incident, "--by", PIO))
    own = pingan(tmp_path, db_url, "release", "approve", first, "--by", PIO)
    assert own.returncode == 1 and "four eyes: xiang-yun drafted" in own.stderr
    early = pingan(tmp_path, db_url, "release", "publish", first, "--by", PIO)
    assert early.returncode == 1 and "only an approved release is published" in early.stderr
    timeline = pingan(tmp_path, db_url, "timeline", incident).stdout
    assert timeline.count(" refused ") == 2 and "release_drafted" in timeline

    shown = pingan(tmp_path, db_url, "release", "show", first)
    assert "alert  draft  revision 1" in shown.stdout and "二级响应" in shown.stdout
    # Who was asked to approve it: the grade II commander, on the console and by SMS, not sent yet (no worker runs).
    assert f"asked     {COMMANDER} (revision 1)" in shown.stdout and "twilio_sms intended" in shown.stdout
    approved = pingan(tmp_path, db_url, "release", "approve", first, "--by", COMMANDER, "--revision", "1")
    assert approved.returncode == 0 and f"approved  by {COMMANDER}" in approved.stdout
    published = pingan(tmp_path, db_url, "release", "publish", first, "--by", PIO)
    assert published.returncode == 0, published.stderr
    assert f"cap identifier pingan@tangjiawan.example-{first}" in published.stdout

    update = release_id(pingan(tmp_path, db_url, "release", "draft", incident, "--by", PIO))
    edited = pingan(tmp_path, db_url, "release", "edit", update, "--by", PIO, "--headline-zh", "台风“海葵”最新情况",
                    "--headline-en", "Typhoon Haikui: latest")
    assert "revision 2" in edited.stdout and "headline zh: 台风“海葵”最新情况" in edited.stdout
    stale = pingan(tmp_path, db_url, "release", "approve", update, "--by", COMMANDER, "--revision", "1")
    assert stale.returncode == 1 and "revision" in stale.stderr
    assert pingan(tmp_path, db_url, "release", "approve", update, "--by", COMMANDER).returncode == 0
    assert pingan(tmp_path, db_url, "release", "publish", update, "--by", PIO).returncode == 0

    end = release_id(pingan(tmp_path, db_url, "release", "draft", incident, "--by", PIO, "--all-clear"))
    rejected = pingan(tmp_path, db_url, "release", "reject", end, "--by", COMMANDER, "--reason", "积水路段未清理")
    assert "rejected  by huang-liping: 积水路段未清理" in rejected.stdout
    assert pingan(tmp_path, db_url, "release", "edit", end, "--by", PIO, "--channel", "cap").returncode == 0
    assert pingan(tmp_path, db_url, "release", "approve", end, "--by", COMMANDER).returncode == 0
    assert pingan(tmp_path, db_url, "release", "publish", end, "--by", PIO).returncode == 0

    data = json.loads(pingan(tmp_path, db_url, "release", "show", end, "--json").stdout)
    assert data["kind"] == "all_clear" and data["references"] == [first, update] and data["channels"] == ["cap"]
    listed = pingan(tmp_path, db_url, "release", "list", incident).stdout.splitlines()
    assert [line.split()[1:3] for line in listed] == [["alert", "published"], ["update", "published"],
                                                       ["all_clear", "published"]]
    verified = pingan(tmp_path, db_url, "log", "verify")
    assert verified.returncode == 0 and "hash chain intact" in verified.stdout
    missing = pingan(tmp_path, db_url, "release", "show", "nope")
    assert missing.returncode == 1 and "release nope not found" in missing.stderr
