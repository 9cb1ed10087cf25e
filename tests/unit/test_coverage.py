"""coverage(): each category x subtype x grade, who handles it, and which cells only the catch-all covers."""

from typing import Any

from pingan.handlers.plans.coverage import CoverageRow, coverage
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Grade, Subtype

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

