"""The sample drill scenarios validate, and the scenario rules hold."""

import re
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


# ── issue 14, finding 12: routes, CAP references, and errors that name the file and line ──────────────────────────

def test_an_inject_names_a_route_its_kind_can_take() -> None:
    sms = {"id": "t", "at_min": 0, "sms": {"phone": "+8613800000001", "text": "起火了"}}
    scenario = Scenario.model_validate({"title": "t", "injects": [
        sms, {"id": "p", "at_min": 1, "via": "alertmanager", "report": REPORT},
        {"id": "v", "at_min": 2, "voice": {"digit": "0", "recording_url": "https://example.org/r.wav"}}]})
    assert [i.route for i in scenario.injects] == ["sms", "alertmanager", "voice"]
    with pytest.raises(ValidationError, match="cannot go via sms; via is one of api, alertmanager"):
        Scenario.model_validate({"title": "t", "injects": [{"id": "a", "at_min": 0, "via": "sms", "report": REPORT}]})
    with pytest.raises(ValidationError, match="recording_url exactly when digit is 0"):
        Scenario.model_validate({"title": "t", "injects": [{"id": "a", "at_min": 0, "voice": {"digit": "0"}}]})


def test_a_cap_inject_references_previous_or_an_earlier_cap_inject() -> None:
    alert = {"id": "a", "at_min": 0, "cap": {"xml": "<alert/>"}}
    ok = Scenario.model_validate({"title": "t", "injects": [
        alert, {"id": "b", "at_min": 1, "cap": {"xml": "<alert/>", "references": "previous"}},
        {"id": "c", "at_min": 2, "cap": {"xml": "<alert/>", "references": "b"}}],
        "expect": [{"incident": "a"}]})
    assert [i.chained for i in ok.injects] == [False, True, True]
    with pytest.raises(ValidationError, match="no CAP message is sent before it"):
        Scenario.model_validate({"title": "t", "injects": [
            {"id": "b", "at_min": 0, "cap": {"xml": "<alert/>", "references": "previous"}}]})
    with pytest.raises(ValidationError, match="sent before it, got 'c'"):
        Scenario.model_validate({"title": "t", "injects": [
            alert, {"id": "b", "at_min": 1, "cap": {"xml": "<alert/>", "references": "c"}},
            {"id": "c", "at_min": 2, "cap": {"xml": "<alert/>"}}]})
    with pytest.raises(ValidationError, match="'b' is not the id of an inject that starts an incident"):
        Scenario.model_validate({"title": "t", "injects": [
            alert, {"id": "b", "at_min": 1, "cap": {"xml": "<alert/>", "references": "a"}}],
            "expect": [{"incident": "b"}]})


def test_scenario_mistakes_name_the_file_and_line(tmp_path: Path) -> None:
    from pingan.handlers.drills.scenario import ScenarioError, read_scenario

    bad = tmp_path / "bad.yaml"
    bad.write_text("title: 坏脚本\ninjects:\n  - id: a\n    at_min: 0\n    sms: {text: 起火}\n"
                   "  - id: b\n    at_min: 1\n    via: sms\n    report: {category: natural_disaster, "
                   "subtype: meteorological, grade: IV, title: x}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        read_scenario(bad)
    assert str(caught.value).startswith(f"{bad}:6:") and "cannot go via sms" in str(caught.value)
    chain = tmp_path / "chain.yaml"
    chain.write_text("title: 链\ninjects:\n  - {id: a, at_min: 0, cap: {xml: '<alert/>'}}\n"
                     "  - {id: c, at_min: 2, cap: {xml: '<alert/>', references: nothing-before}}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(chain))}:4:.*nothing-before"):
        read_scenario(chain)
    missing = tmp_path / "missing.yaml"
    missing.write_text("title: x\ninjects:\n  - id: a\n    at_min: 0\n    cap:\n      file: nowhere.xml\n")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(missing))}:6:.*no file 'nowhere.xml'"):
        read_scenario(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: x\ninjects: [\n")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(broken))}:\d+:\d+: not valid YAML"):
        read_scenario(broken)
    for sample in DRILLS:
        assert read_scenario(sample).injects
