"""The trend early-warning rules file (schemas/trends.py, handlers/plans/lint_trends.py): the shipped one is clean;
mistakes are named with file:line:col, and `pingan plans lint` reports them."""

from __future__ import annotations

import shutil
from pathlib import Path

from pingan.handlers.plans.lint import lint_plans
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.plans import PLANS_DIR
from pingan.schemas.trends import AreaLevel, Detector, Interval

BAD = """\
version: 1
rules:
  - id: a
    level: community
    category: public_health
    subtype: fire
  - id: b
    level: town
    category: public_health
    detector: C2
    k: 0.5
  - id: c
    level: community
    category: accident_disaster
    detector: C4
  - id: d
    level: community
    category: public_health
    interval: daily
  - id: e
    level: community
    category: public_health
    interval: daily
"""


def test_shipped_rules_are_clean_and_watch_public_health_per_community() -> None:
    rules, problems = read_trend_rules(PLANS_DIR)
    assert problems == []
    assert rules is not None
    daily = {(r.level, r.category.value, r.interval): r for r in rules.rules}
    shipped = daily[(AreaLevel.community, "public_health", Interval.daily)]
    assert shipped.detector is Detector.c2 and shipped.effective_threshold == 3.0 and shipped.min_count == 3


def test_mistakes_are_named_with_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "trends").mkdir()
    (tmp_path / "trends" / "rules.yaml").write_text(BAD)
    rules, problems = read_trend_rules(tmp_path)
    assert rules is None
    text = "\n".join(str(p) for p in problems)
    assert f"{tmp_path}/trends/rules.yaml:3:5: rules[0]: Value error, subtype 'fire' is not a subtype of " \
           "'public_health'" in text
    assert "rules[1]: Value error, k is the CUSUM's reference value; detector C2 has none" in text
    assert ":15:15: rules[2].detector: Input should be 'C1', 'C2', 'C3' or 'CUSUM'" in text


def test_one_rule_per_series(tmp_path: Path) -> None:
    (tmp_path / "trends").mkdir()
    (tmp_path / "trends" / "rules.yaml").write_text(
        "version: 1\nrules:\n"
        "  - {id: d, level: community, category: public_health, interval: daily}\n"
        "  - {id: e, level: community, category: public_health, interval: daily, detector: CUSUM}\n")
    rules, problems = read_trend_rules(tmp_path)
    assert rules is None
    assert [str(p) for p in problems] == [
        f"{tmp_path}/trends/rules.yaml:2:1: rules: Value error, rules[1] (e): the same series as 'd' "
        "(community × public_health × daily); one rule per series"]


def test_plans_lint_reports_the_rules_file(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (plans / "trends" / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: loose\n    level: community\n    category: public_health\n"
        "    detector: C1\n    threshold: 1.5\n  - id: wrong\n    level: estate\n    category: public_health\n")
    report = lint_plans(plans)
    assert any(":9:12: rules[1].level: Input should be 'district', 'town', 'community' or 'grid'" in str(p)
               for p in report.errors)
    (plans / "trends" / "rules.yaml").write_text(
        "version: 1\nrules:\n  - id: loose\n    level: community\n    category: public_health\n"
        "    detector: C1\n    threshold: 1.5\n")
    report = lint_plans(plans)
    assert [str(p) for p in report.warnings if "trends" in p.file] == [
        f"{plans}/trends/rules.yaml:7:16: warning: rules[0].threshold: C1 threshold 1.5 is under 2: it alarms on "
        "ordinary day-to-day noise"]
    assert not [p for p in report.errors if "trends" in p.file]
