"""The trend early-warning rules file (plans/trends/rules.yaml, schemas/trends.py), read and checked like a plan.

`read_trend_rules(plans_dir)` gives the validated rules and every problem as `file:line:col: message`; `pingan plans
lint` includes them (an error fails the lint) and `pingan trends lint` prints them alone. No file is no rules and no
problem: trend warning is then off. Beyond the schema (one rule per series, subtypes of their category, k only for
the CUSUM), a warning where a rule is looser than the published methods: an EARS threshold under 2 or a CUSUM h
under 2 alarms on ordinary noise (bench/trends.py shows the false-alarm rates).
"""

from __future__ import annotations

from pathlib import Path

from pingan.handlers.plans.problems import PlanProblem, Severity
from pingan.handlers.plans.reader import _load_file
from pingan.schemas.trends import TREND_RULES_FILE, TrendRules

LOOSE_BELOW = 2.0


def read_trend_rules(plans_dir: Path) -> tuple[TrendRules | None, list[PlanProblem]]:
    """(rules, problems): rules is None when the file is missing (no problems then) or has errors."""
    path = Path(plans_dir) / TREND_RULES_FILE
    if not path.is_file():
        return None, []
    problems: list[PlanProblem] = []
    loaded = _load_file(path, TrendRules, problems)
    if loaded is None:
        return None, problems
    rules, doc = loaded
    for i, rule in enumerate(rules.rules):
        if rule.effective_threshold < LOOSE_BELOW:
            what = "h" if rule.detector.value == "CUSUM" else "threshold"
            problems.append(doc.problem(("rules", i, "threshold"), f"rules[{i}].threshold: {rule.detector.value} "
                                        f"{what} {rule.effective_threshold:g} is under {LOOSE_BELOW:g}: it alarms "
                                        f"on ordinary day-to-day noise", Severity.warning))
    return rules, problems
