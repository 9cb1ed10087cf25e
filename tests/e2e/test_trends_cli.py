"""`pingan trends` and `pingan trends lint` as the duty officer runs them, over a store the stage has counted into."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.plans import PLANS_DIR
from pingan.schemas.common import utcnow
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport, Location
from pingan.schemas.taxonomy import Source
from pingan.settings import Settings
from pingan.store.batch import batch_tx
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.streams.stages import triage_stage
from pingan.streams.trends import TrendWatch

TANGJIA, JISHAN = "440402100001", "440402100003"


def pingan(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PINGAN_DATA_DIR": str(tmp / "var")}
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "trends", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def report(area: str) -> RawEvent:
    r = IncidentReport(source=Source.hotline_sms, category="public_health", subtype="food_occupational_poisoning",
                       grade="IV", title="拉肚子", location=Location(area_code=area), dedup_key=uuid.uuid4().hex)
    # a minute apart, ending now: today's daily interval (unless the test runs across Beijing midnight)
    return RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(), received_at=utcnow(),
                    report=r)


def test_trends_prints_series_baselines_and_the_warning(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    store = Store(Settings(data_dir=tmp_path / "var").resolved_database_url)
    rules, _ = read_trend_rules(PLANS_DIR)
    watch = TrendWatch(rules, "incidents.raw")
    with batch_tx(store) as tx:
        for e in [report(TANGJIA) for _ in range(6)] + [report(JISHAN) for _ in range(2)]:
            watch.observe(tx, e, triage_stage(tx, e, timedelta(minutes=30)))
    store.close()
    done = pingan(tmp_path, "--area", TANGJIA)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    daily = [line for line in lines if "public_health/* " in line and " daily " in line]
    assert len(daily) == 1 and daily[0].startswith(f"community {TANGJIA}")
    assert "唐家社区" in daily[0] and "now 6" in daily[0] and "baseline 0.0±0.0  C2 6.00 > 3  ALARM" in daily[0]
    assert JISHAN not in done.stdout
    assert "warnings raised:" in lines
    assert any(f"trend:community:{TANGJIA}:public_health:*" in line for line in lines)
    everyone = pingan(tmp_path, "--category", "public_health")
    assert f"community {JISHAN}" in everyone.stdout and "C2 2.00 ≤ 3" in everyone.stdout
    assert "ALARM" not in [line for line in everyone.stdout.splitlines() if JISHAN in line and "daily" in line][0]
    linted = pingan(tmp_path, "lint")
    assert linted.returncode == 0 and "ok: 4 rules, 0 warnings" in linted.stdout
