"""coverage(): each category x subtype x grade, who handles it, and which cells only the catch-all covers."""

from typing import Any

from pingan.handlers.plans.coverage import CoverageRow, coverage
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.plans import PLANS_DIR
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Grade, Subtype

LEVELS = [{"grade": g, "response_level": f"{g}级响应",
           "notify": [{"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"],
                       "template": {"zh": "{title}"}}]} for g in ("I", "II", "III", "IV")]


def plan(pid: str, applies: dict[str, Any], status: str = "approved") -> Plan:
    return Plan.model_validate({"id": pid, "version": 1, "title": {"zh": pid}, "owner": "emergency",
                                "status": status, "applies_to": applies, "levels": LEVELS})


CYBER = {"category": "social_security", "subtypes": ["cyber"], "grades": ["I", "II", "III", "IV"],
         "reason": {"zh": "网信部门处置", "en": "the cyberspace authority's"}}


def row(rows: list[CoverageRow], subtype: Subtype, grade: Grade = Grade.III) -> CoverageRow:
    return next(r for r in rows if r.subtype is subtype and r.grade is grade)


def test_cells_only_the_catch_all_covers_are_marked_and_documented_ones_say_why() -> None:
    rows = coverage(PlanSet.of([
        plan("typhoon", {"category": "natural_disaster", "subtypes": ["meteorological"], "hazards": ["typhoon"]}),
        plan("fire", {"category": "accident_disaster", "subtypes": ["fire"]}),
        plan("general", {"catch_all": True, "uncovered": [CYBER]}),
    ]))
    fire = row(rows, Subtype.fire)
    assert fire.gap is None and fire.catch_all is None and fire.general == ("fire v1",)
    cyber = row(rows, Subtype.cyber)
    assert cyber.catch_all_only and cyber.catch_all == "general v1" and cyber.deliberate == "the cyberspace authority's"
    assert cyber.gap == "catch-all only (general v1): deliberate, the cyberspace authority's"
    quake = row(rows, Subtype.earthquake, Grade.I)
    assert quake.catch_all_only and quake.deliberate is None
    assert quake.gap == "catch-all only (general v1): no specific plan, none documented"
    # A hazard plan covers its hazard; incidents of the subtype without it fall to the catch-all.
    weather = row(rows, Subtype.meteorological)
    assert weather.catch_all_only and weather.hazards == {"typhoon": ("typhoon v1",)}
    assert weather.gap == ("only hazards typhoon; the rest falls to the catch-all (general v1): no specific plan, "
                           "none documented")
    assert weather.as_json()["catch_all_only"] is True and weather.as_json()["catch_all"] == "general v1"


def test_without_an_approved_catch_all_a_gap_is_a_gap() -> None:
    for plans in ([], [plan("general", {"catch_all": True}, status="draft")]):
        quake = row(coverage(PlanSet.of(plans)), Subtype.earthquake)
        assert quake.gap == "no plan" and quake.catch_all is None and not quake.catch_all_only


def test_the_shipped_plans_cover_every_cell_but_the_documented_ones() -> None:
    shipped = load_plans(PLANS_DIR)
    catch_all = shipped.catch_all
    assert catch_all is not None and catch_all.id == "general-incident"
    rows = coverage(shipped)
    assert len(rows) == sum(len(subs) for subs in SUBTYPES_BY_CATEGORY.values()) * len(Grade)
    undocumented = [f"{r.category.value}/{r.subtype.value} {r.grade.value}" for r in rows
                    if r.catch_all_only and not r.deliberate]
    assert undocumented == []
    # The four categories' common subtypes each have a plan of their own at every grade, for every hazard.
    common = {Subtype.flood_drought, Subtype.meteorological, Subtype.earthquake, Subtype.geological, Subtype.marine,
              Subtype.forest_fire, Subtype.industrial_safety, Subtype.hazardous_chemicals, Subtype.transport,
              Subtype.environmental_pollution, Subtype.fire, Subtype.infectious_disease,
              Subtype.food_occupational_poisoning, Subtype.terrorist_attack, Subtype.mass_incident,
              Subtype.criminal_case}
    assert [f"{r.subtype.value} {r.grade.value}: {r.gap}" for r in rows if r.subtype in common and r.gap] == []
    public_facility = [r for r in rows if r.subtype is Subtype.public_facility]
    assert all({"gas_leak", "power_outage", "water_outage"} <= set(r.hazards) and r.deliberate for r in public_facility)
    assert not [r for r in rows if r.gap and not r.catch_all]  # nothing is silent
