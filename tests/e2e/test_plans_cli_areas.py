"""`pingan plans test --area CODE` and area-aware plans (issue 18): a plan for one community (applies_to.areas) whose
step targets the incident's grid officer and community leader; the CLI places the report as triage would and shows
whom it reaches. A report with only coordinates (--file) is matched through its placement."""

import json
from pathlib import Path

from pingan.handlers.plans.reader import read_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import district_from_geojson
from tests.e2e.test_plans_cli import AT, copy_plans, pingan

QIAO_PLAN = """id: qiao-island-fire
version: 1
title: {zh: 淇澳岛火灾处置方案, en: Qi'ao Island fire}
owner: emergency
status: approved
applies_to: {category: accident_disaster, subtypes: [fire], areas: ["440402100009"]}
levels:
  - grade: IV
    response_level: 四级响应
    notify:
      - id: island-grid
        targets: [{grid_officer: incident}, {area_leader: community}, {roster: duty-room}]
        channels: [sms, console]
        template: {zh: "【淇澳】{title}"}
"""
PEOPLE = {p.id: p for p in read_plans(PLANS_DIR).directory.people}
DISTRICT = district_from_geojson(AREAS_FILE.read_text(encoding="utf-8"), str(AREAS_FILE))
AREAS = {a.code: a for a in DISTRICT.areas}


def test_a_community_plan_reaches_the_grid_officer_and_the_community_leader(tmp_path: Path) -> None:
    plans = copy_plans(tmp_path / "plans")
    (plans / "qiao-island-fire.yaml").write_text(QIAO_PLAN, encoding="utf-8")
    lint = pingan("lint", str(plans))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    done = pingan("test", "--subtype", "fire", "--grade", "IV", "--area", "440402100009005", "--dir", str(plans),
                  "--at", AT, "--expect", "qiao-island-fire")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "placed:   珠海高新区 › 唐家湾镇 › 淇澳社区 › 淇澳社区第五网格 (area_code:" in out
    officer = PEOPLE[AREAS["440402100009005"].officers[0]]
    leader = PEOPLE[AREAS["440402100009"].leaders[0]]
    sms = next(line for line in out.splitlines() if "SMS + console to" in line)
    assert f"{officer.name} (grid_officer incident)" in sms and f"{leader.name} (area_leader community)" in sms
    # Another community's grid: the town's fire plan, not the island's.
    other = pingan("test", "--subtype", "fire", "--grade", "IV", "--area", "440402100001001", "--dir", str(plans),
                   "--at", AT, "--expect", "building-fire")
    assert other.returncode == 0, other.stdout + other.stderr


def test_a_report_with_only_coordinates_is_matched_through_its_placement(tmp_path: Path) -> None:
    plans = copy_plans(tmp_path / "plans")
    (plans / "qiao-island-fire.yaml").write_text(QIAO_PLAN, encoding="utf-8")
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"category": "accident_disaster", "subtype": "fire", "grade": "IV",
                                  "title": "岛上冒烟", "location": {"lat": 22.43, "lon": 113.63}}), encoding="utf-8")
    done = pingan("test", "--file", str(report), "--dir", str(plans), "--at", AT, "--expect", "qiao-island-fire")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "淇澳社区第五网格 (coordinates: point 22.43000,113.63000" in done.stdout


def test_intake_test_shows_where_triage_would_place_the_report(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    report = tmp_path / "r.json"
    report.write_text(json.dumps({"category": "accident_disaster", "subtype": "fire", "grade": "IV",
                                  "title": "岛上冒烟", "location": {"lat": 22.43, "lon": 113.63}}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(PYTHONIOENCODING="utf-8", PINGAN_DATA_DIR=str(tmp_path / "var"))
    done = subprocess.run([sys.executable, "-m", "pingan.cli.main", "intake", "test", str(report)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.split("\n", 1)[1])
    assert summary["placement"]["path"] == ["4404HT", "440402100", "440402100009", "440402100009005"]
    assert summary["placement"]["method"] == "coordinates" and summary["placement"]["outside"] is False
