"""The sample drill scenarios validate, and the scenario rules hold."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.drill import Scenario, load_scenario

DRILLS = sorted((Path(PLANS_DIR) / "drills").glob("*.yaml"))


def test_the_three_samples_are_there() -> None:
    assert {p.stem for p in DRILLS} >= {"typhoon", "chemical-leak-night", "school-food-poisoning"}


@pytest.mark.parametrize("path", DRILLS, ids=lambda p: p.stem)
def test_sample_scenario_validates(path: Path) -> None:
    scenario = load_scenario(path)
    plans = load_plans(Path(PLANS_DIR))
    for expectation in scenario.expect:
        assert expectation.plan == "auto" or plans.get(expectation.plan) is not None
    for responder in scenario.responders:
        if responder.person:
            assert responder.person in plans.directory.people
        else:
            assert responder.roster in plans.directory.rosters


def test_drills_are_not_loaded_as_plans() -> None:
    ids = {p.id for p in load_plans(Path(PLANS_DIR))}
    assert not any("drill" in i for i in ids) and len(ids) == len(list(Path(PLANS_DIR).glob("*.yaml")))


REPORT = {"category": "natural_disaster", "subtype": "meteorological", "grade": "IV", "title": "x"}


def test_grade_change_must_name_a_cap_inject() -> None:
    with pytest.raises(ValidationError, match="must name a cap inject"):
        Scenario.model_validate({"title": "t", "injects": [
            {"id": "a", "at_min": 0, "report": REPORT},
            {"id": "b", "at_min": 1, "grade_change": {"of": "a", "grade": "II"}}]})


def test_inject_is_exactly_one_kind_and_responder_has_a_behaviour() -> None:
    with pytest.raises(ValidationError, match="exactly one of report, cap, grade_change"):
        Scenario.model_validate({"title": "t", "injects": [{"id": "a", "at_min": 0}]})
    with pytest.raises(ValidationError, match="never_answers"):
        Scenario.model_validate({"title": "t", "injects": [{"id": "a", "at_min": 0, "report": REPORT}],
                                 "responders": [{"person": "zhou-haibo"}]})
