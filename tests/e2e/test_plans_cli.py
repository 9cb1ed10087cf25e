"""`python -m pingan.cli.main plans …` as the plan author runs it: lint, test, coverage, diff."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pingan.plans import PLANS_DIR
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY

CAP_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "cap" / "us-nws-blizzard-warning.xml"
AT = "2026-07-01T10:00+08:00"


def pingan(*args: str, cwd: Path | None = None, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    if tmp is not None:
        env["PINGAN_DATA_DIR"] = str(tmp / "var")
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "plans", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120, check=False)


def copy_plans(target: Path) -> Path:
    shutil.copytree(PLANS_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_lint_passes_on_the_shipped_plans() -> None:
    done = pingan("lint", str(PLANS_DIR))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 error(s)" in done.stderr
    assert all(": warning: " in line for line in done.stdout.splitlines())


def test_lint_fails_on_a_broken_copy_with_file_line_col(tmp_path: Path) -> None:
    plans = copy_plans(tmp_path / "plans")
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{roster: duty-room}", "{roster: duty-rom}", 1), encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "{roster: duty-room}" in row)
    col = text.splitlines()[line - 1].index("duty-room") + 1
    done = pingan("lint", str(plans))
    assert done.returncode == 1
    assert (f"{path}:{line}:{col}: levels[0].notify[0].targets[0].roster: unknown roster 'duty-rom'; "
            "did you mean 'duty-room'?") in done.stdout.splitlines()
    assert " 1 error(s)" in done.stderr


def test_typhoon_alias_prints_the_typhoon_plan_and_its_timeline() -> None:
    done = pingan("test", "--category", "natural_disaster", "--subtype", "typhoon", "--grade", "II",
                  "--dir", str(PLANS_DIR), "--at", AT, "--expect", "typhoon")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "incident: actual natural_disaster/meteorological/typhoon grade II" in out
    assert "plan:     typhoon v" in out and "by hazard and subtype" in out
    assert "level:    II 二级响应" in out
    timeline = [line.strip() for line in out.splitlines() if line.strip().startswith("t+")]
    assert timeline[0].startswith("t+0 ") and "(roster duty-room)" in timeline[0]
    assert any("voice call to" in line and "(role commander)" in line for line in timeline)
    assert any("task deadline:" in line for line in timeline)
    minutes = [float(line.split()[0][2:]) for line in timeline]
    assert minutes == sorted(minutes)
    assert "ok: matched the expected plan 'typhoon'" in out


def test_expect_fails_when_another_plan_matches() -> None:
    done = pingan("test", "--subtype", "rainstorm", "--grade", "III", "--dir", str(PLANS_DIR), "--at", AT,
                  "--expect", "typhoon")
    assert done.returncode == 1
    assert "error: expected plan 'typhoon', matched 'rainstorm-waterlogging'" in done.stderr
    assert "natural_disaster/meteorological/rainstorm grade III" in done.stdout


def test_expect_none_and_bad_subtype() -> None:
    done = pingan("test", "--subtype", "typhoon", "--grade", "I", "--status", "actual", "--dir", str(PLANS_DIR),
                  "--expect", "none")
    assert done.returncode == 1 and "matched 'typhoon'" in done.stderr
    done = pingan("test", "--subtype", "tornado", "--grade", "I", "--dir", str(PLANS_DIR))
    assert done.returncode == 1 and "unknown subtype 'tornado'" in done.stderr and "typhoon" in done.stderr


def test_incident_json_file(tmp_path: Path) -> None:
    incident = {"category": "natural_disaster", "subtype": "marine", "hazard": "storm_surge", "grade": "I",
                "title": "风暴潮", "status": "exercise"}
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident, ensure_ascii=False), encoding="utf-8")
    done = pingan("test", "--file", str(path), "--dir", str(PLANS_DIR), "--at", AT, "--expect", "storm-surge")
    assert done.returncode == 0, done.stderr
    assert "incident: exercise natural_disaster/marine/storm_surge grade I" in done.stdout


@pytest.mark.skipif(not CAP_SAMPLE.exists(), reason="../shared/samples is not beside the project")
def test_cap_file() -> None:
    done = pingan("test", "--file", str(CAP_SAMPLE), "--dir", str(PLANS_DIR), "--at", AT)
    assert done.returncode == 0, done.stderr
    assert "natural_disaster/meteorological/blizzard" in done.stdout and "plan:     " in done.stdout


def test_coverage_table_and_json() -> None:
    done = pingan("coverage", str(PLANS_DIR))
    assert done.returncode == 0, done.stderr
    assert "typhoon" in done.stdout and "gap(s)" in done.stdout
    # Cells no specific plan covers show the catch-all, apart from a real plan, and the gaps say why.
    assert "catch-all" in done.stdout and "taken by the catch-all" in done.stdout
    assert "social_security/cyber I, II, III, IV: catch-all only (general-incident v1): deliberate, " in done.stdout
    data = json.loads(pingan("coverage", str(PLANS_DIR), "--json").stdout)
    # every subtype of every category, grades I–IV
    assert len(data["rows"]) == sum(len(subtypes) for subtypes in SUBTYPES_BY_CATEGORY.values()) * 4
    cyber = next(r for r in data["rows"] if r["subtype"] == "cyber" and r["grade"] == "I")
    assert cyber["plans"] == [] and cyber["catch_all"] == "general-incident v1" and cyber["deliberate"]
    assert all(r["catch_all"] for r in data["rows"] if r["gap"])  # nothing is left silent
    typhoon = [r for r in data["rows"] if r["subtype"] == "meteorological" and r["grade"] == "II"]
    assert any(p.startswith("typhoon ") for p in typhoon[0]["hazards"]["typhoon"])
    assert {g["cell"] for g in data["gaps"]} == {f"{r['category']}/{r['subtype']} {r['grade']}"
                                                 for r in data["rows"] if r["gap"]}


def _bumped(plans: Path) -> None:
    """typhoon v2: the grade I commander call five minutes later."""
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8").replace("\nversion: 1\n", "\nversion: 2\n", 1)
    head, sep, tail = text.partition("      - id: commander-voice\n")
    path.write_text(head + sep + tail.replace("delay_min: 5\n", "delay_min: 10\n", 1), encoding="utf-8")


def test_diff_between_two_directories(tmp_path: Path) -> None:
    old, new = copy_plans(tmp_path / "old"), copy_plans(tmp_path / "new")
    _bumped(new)
    done = pingan("diff", str(old), str(new))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    first = lines.index("natural_disaster/meteorological/typhoon I:")
    assert lines[first + 1].strip() == "typhoon v1 → typhoon v2"
    assert "    notify 'commander-voice' delay_min: 5 → 10" in lines[first:]
    assert "natural_disaster/meteorological/typhoon II, III, IV:" in lines
    assert "4 of " in done.stderr


def test_diff_between_git_revisions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    copy_plans(repo / "plans")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "add", "plans")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "v1")
    _bumped(repo / "plans")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "v2")
    done = pingan("diff", "HEAD~1", "HEAD", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "    notify 'commander-voice' delay_min: 5 → 10" in done.stdout.splitlines()
    done = pingan("diff", "no-such-rev", "HEAD", cwd=repo)
    assert done.returncode == 1 and "neither a plans directory nor a git revision" in done.stderr


def test_approve_is_four_eyes_and_logged(tmp_path: Path) -> None:
    """No setting is needed: the last editor is refused, and so is anyone without the directory's plan_approver
    role; an approver from the directory approves, logged."""
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    typhoon = plans / "typhoon.yaml"
    text = typhoon.read_text(encoding="utf-8")
    typhoon.write_text(text.replace("status: approved", "status: draft", 1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PINGAN_PLAN_APPROVERS"}
    env.update(PINGAN_DATA_DIR=str(tmp_path / "var"), PINGAN_PLANS_DIR=str(plans))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pingan.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    refused = run("plans", "approve", "typhoon", "--by", "xu-jing")  # xu-jing is the last editor
    assert refused.returncode == 1 and "four eyes" in refused.stderr, refused.stdout + refused.stderr
    assert "status: draft" in typhoon.read_text(encoding="utf-8")
    refused = run("plans", "approve", "typhoon", "--by", "zhang-qiming")  # in the directory, not an approver
    assert refused.returncode == 1 and "plan_approver" in refused.stderr, refused.stdout + refused.stderr
    assert "status: draft" in typhoon.read_text(encoding="utf-8")
    ok = run("plans", "approve", "typhoon", "--by", "huang-liping")
    assert ok.returncode == 0, ok.stderr
    assert "status: approved" in typhoon.read_text(encoding="utf-8")
    log = run("timeline", "plan:typhoon")
    assert "plan_approved" in log.stdout and "huang-liping" in log.stdout
    assert run("log", "verify").returncode == 0
