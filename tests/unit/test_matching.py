"""Plan matching: coverage rules, specificity, ties, status gating and the index."""

from datetime import UTC, datetime
from typing import Any

import pytest

from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.matching import match_plan
from pingan.handlers.plans.planset import PlanSet
from pingan.plans import PLANS_DIR
from pingan.schemas.incident import Incident, IncidentReport, Location
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Category, Grade, Subtype

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def plan(pid: str, category: str = "natural_disaster", subtypes: list[str] | None = None,
         hazards: list[str] | None = None, grades: list[str] | None = None, status: str = "approved",
         **extra: Any) -> Plan:
    applies: dict[str, Any] = {"category": category, "subtypes": subtypes or [], "hazards": hazards or [],
                               **extra.pop("applies", {})}
    levels = [{"grade": g, "response_level": f"{g}级响应",
               "notify": [{"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"],
                           "template": {"zh": "{title}"}}]} for g in (grades or ["I", "II", "III", "IV"])]
    return Plan.model_validate({
        "id": pid, "version": 1, "title": {"zh": pid}, "owner": "emergency", "status": status,
        "applies_to": applies, "levels": levels, **extra,
    })


def incident(category: str = "natural_disaster", subtype: str = "meteorological", grade: str = "III",
             hazard: str | None = "typhoon", status: str = "actual") -> Incident:
    return Incident(id="INC-1", dedup_key="k", received_at=T0, category=category, subtype=subtype,
                    grade=grade, hazard=hazard, status=status, title="测试")


@pytest.fixture(scope="module")
def shipped() -> PlanSet:
    return load_plans(PLANS_DIR)


@pytest.mark.parametrize(("category", "subtype", "hazard", "expected"), [
    ("natural_disaster", "meteorological", "typhoon", "typhoon"),
    ("accident_disaster", "fire", None, "building-fire"),
    ("accident_disaster", "hazardous_chemicals", "leak", "hazchem-leak"),
    ("accident_disaster", "hazardous_chemicals", None, "hazchem-leak"),
])
@pytest.mark.parametrize("grade", ["I", "II", "III", "IV"])
def test_each_shipped_plan_matches_its_incident(shipped: PlanSet, category: str, subtype: str,
                                                hazard: str | None, expected: str, grade: str) -> None:
    result = match_plan(shipped, incident(category, subtype, grade, hazard))
    assert result.plan is not None and result.plan.id == expected
    assert result.candidates == [expected] and expected in result.reason


def test_shipped_plans_leave_other_cells_to_the_catch_all(shipped: PlanSet) -> None:
    result = match_plan(shipped, incident("social_security", "cyber", hazard="ransomware"))
    assert result.plan is not None and result.plan.id == "general-incident" and result.catch_all
    assert result.candidates == ["general-incident"]
    assert result.reason.startswith("no plan for this category and grade: no plan covers")
    assert "social_security/cyber/ransomware grade III" in result.reason and "catch-all" in result.reason


def test_report_before_triage_matches_too(shipped: PlanSet) -> None:
    report = IncidentReport(category="accident_disaster", subtype="fire", grade="III", title="仓库起火")
    assert match_plan(shipped, report).plan == shipped.get("building-fire")


def test_most_specific_wins() -> None:
    plans = PlanSet.of([
        plan("a-category"),
        plan("b-subtype", subtypes=["meteorological"]),
        plan("c-hazard", hazards=["typhoon"]),
        plan("d-both", subtypes=["meteorological"], hazards=["typhoon"]),
    ])
    assert match_plan(plans, incident()).plan.id == "d-both"  # type: ignore[union-attr]
    # Without the most specific plan, naming the hazard outranks naming the subtype.
    fewer = PlanSet.of(p for p in plans if p.id != "d-both")
    assert match_plan(fewer, incident()).plan.id == "c-hazard"  # type: ignore[union-attr]
    no_hazard = match_plan(plans, incident(hazard=None))
    assert no_hazard.plan is not None and no_hazard.plan.id == "b-subtype"
    other = match_plan(plans, incident(subtype="earthquake", hazard=None))
    assert other.plan is not None and other.plan.id == "a-category"


def test_hazard_comparison_ignores_case_and_spaces() -> None:
    plans = PlanSet.of([plan("t", hazards=["Typhoon"])])
    assert match_plan(plans, incident(hazard=" TYPHOON ")).plan is not None


def test_tie_picks_lowest_id_and_reports_it() -> None:
    plans = PlanSet.of([plan("zeta", hazards=["typhoon"]), plan("alpha", hazards=["typhoon"]),
                        plan("general")])
    result = match_plan(plans, incident())
    assert result.plan is not None and result.plan.id == "alpha"
    assert result.candidates == ["alpha", "zeta"]
    assert result.reason.startswith("tie:") and "alpha" in result.reason and "zeta" in result.reason


def test_draft_never_matches_actual_but_matches_exercise_and_test() -> None:
    plans = PlanSet.of([plan("draft-typhoon", hazards=["typhoon"], status="draft")])
    actual = match_plan(plans, incident())
    assert actual.plan is None and actual.candidates == ["draft-typhoon"]
    assert "draft" in actual.reason and "approved" in actual.reason
    for status in ("exercise", "test"):
        assert match_plan(plans, incident(status=status)).plan is not None


def test_excluded_draft_falls_back_to_a_less_specific_approved_plan() -> None:
    plans = PlanSet.of([plan("draft-typhoon", hazards=["typhoon"], status="draft"), plan("general")])
    assert match_plan(plans, incident()).plan.id == "general"  # type: ignore[union-attr]
    assert match_plan(plans, incident(status="exercise")).plan.id == "draft-typhoon"  # type: ignore[union-attr]


def test_retired_never_matches() -> None:
    plans = PlanSet.of([plan("old", status="retired")])
    for status in ("actual", "exercise", "test"):
        assert match_plan(plans, incident(status=status)).plan is None


def test_no_plan_gives_none_with_a_reason() -> None:
    result = match_plan(PlanSet.empty(), incident())
    assert result.plan is None and result.candidates == [] and result.reason.startswith("no plan covers")


def test_grade_not_covered() -> None:
    plans = PlanSet.of([plan("big-only", hazards=["typhoon"], grades=["I", "II"])])
    assert match_plan(plans, incident(grade="I")).plan is not None
    result = match_plan(plans, incident(grade="IV"))
    assert result.plan is None and "grade IV" in result.reason


def test_subtype_and_category_must_fit() -> None:
    plans = PlanSet.of([plan("fire", category="accident_disaster", subtypes=["fire"])])
    assert match_plan(plans, incident("accident_disaster", "transport", hazard=None)).plan is None
    assert match_plan(plans, incident(hazard=None)).plan is None


def test_index_keys_plans_by_category_subtype_grade() -> None:
    plans = PlanSet.of([plan("t", subtypes=["meteorological", "marine"], hazards=["typhoon"], grades=["I"]),
                        plan("any")])
    key = (Category.natural_disaster, Subtype.meteorological, Grade.I)
    assert [p.id for p in plans.index[key]["typhoon"]] == ["t"]
    marine = (Category.natural_disaster, Subtype.marine, Grade.I)
    assert [p.id for p in plans.index[marine]["typhoon"]] == ["t"]
    # A plan without subtypes or hazards sits under None, once per grade.
    assert [k for k in plans.index if k[1] is None] == [(Category.natural_disaster, None, g) for g in Grade]
    assert [p.id for p in plans.index[(Category.natural_disaster, None, Grade.III)][None]] == ["any"]


def test_thousand_plans_match_through_the_index() -> None:
    many = [
        plan(f"p{i:04d}", category="accident_disaster", subtypes=["transport"], hazards=[f"hazard-{i}"])
        for i in range(1000)
    ] + [plan("typhoon", hazards=["typhoon"], grades=["III"])]
    plans = PlanSet.of(many)
    # The index is bounded by the taxonomy, not by the plan count: the thousand plans share 4 keys,
    # and within a key each hazard has its own bucket.
    assert len(plans.index) == 5
    bucket = plans.index[(Category.accident_disaster, Subtype.transport, Grade.II)]
    assert len(bucket) == 1000 and all(len(ps) == 1 for ps in bucket.values())
    hit = match_plan(plans, incident("accident_disaster", "transport", "II", hazard="hazard-737"))
    assert hit.plan is not None and hit.plan.id == "p0737" and hit.candidates == ["p0737"]
    assert match_plan(plans, incident()).plan.id == "typhoon"  # type: ignore[union-attr]


def test_matching_reads_only_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Matching must use the prebuilt index and never walk the plan list."""
    plans = PlanSet.of([plan(f"p{i}", hazards=[f"h{i}"]) for i in range(1000)])

    class Untouchable(tuple):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("matching iterated over every plan")

    object.__setattr__(plans, "plans", Untouchable(plans.plans))
    result = match_plan(plans, incident(hazard="h999"))
    assert result.plan is not None and result.plan.id == "p999"


def test_area_prefix_narrows_and_outranks() -> None:
    plans = PlanSet.of([plan("town"), plan("qiao-island", applies={"areas": ["440402100009"]})])
    here = incident(hazard=None).model_copy(update={"location": Location(area_code="440402100009001")})
    assert match_plan(plans, here).plan.id == "qiao-island"  # type: ignore[union-attr]
    elsewhere = incident(hazard=None).model_copy(update={"location": Location(area_code="440402100001")})
    assert match_plan(plans, elsewhere).plan.id == "town"  # type: ignore[union-attr]


def test_label_matchers_as_in_alertmanager() -> None:
    school = plan("school", applies={"matchers": [{"label": "place", "op": "=", "value": "school"},
                                                  {"label": "env", "op": "!~", "value": "test|dev"}]})
    plans = PlanSet.of([school, plan("general")])
    base = incident(hazard=None)
    at_school = base.model_copy(update={"labels": {"place": "school"}})
    assert match_plan(plans, at_school).plan.id == "school"  # type: ignore[union-attr]
    assert match_plan(plans, base).plan.id == "general"  # type: ignore[union-attr]
    in_dev = base.model_copy(update={"labels": {"place": "school", "env": "dev"}})
    assert match_plan(plans, in_dev).plan.id == "general"  # type: ignore[union-attr]


def test_outside_effective_dates_never_matches_actual() -> None:
    from datetime import date

    plans = PlanSet.of([plan("old", effective_from="2020-01-01", effective_to="2024-12-31")])
    assert match_plan(plans, incident(), today=date(2026, 11, 25)).plan is None
    assert match_plan(plans, incident(), today=date(2024, 6, 1)).plan is not None
    assert match_plan(plans, incident(status="exercise"), today=date(2026, 11, 25)).plan is not None


# ── the catch-all plan (通用突发事件): what no specific plan takes ────────────────────────────────────────────────

def catch_all(pid: str = "general", status: str = "approved", **applies: Any) -> Plan:
    levels = [{"grade": g, "response_level": f"{g}级响应",
               "notify": [{"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"],
                           "template": {"zh": "无对应预案：{title}"}}]} for g in ("I", "II", "III", "IV")]
    return Plan.model_validate({"id": pid, "version": 1, "title": {"zh": pid}, "owner": "emergency",
                                "status": status, "applies_to": {"catch_all": True, **applies}, "levels": levels})


def test_no_specific_plan_falls_to_the_catch_all_with_the_reason() -> None:
    plans = PlanSet.of([plan("typhoon", hazards=["typhoon"]), catch_all()])
    result = match_plan(plans, incident("accident_disaster", "public_facility", "IV", hazard=None))
    assert result.plan is not None and result.plan.id == "general" and result.catch_all
    assert result.candidates == ["general"]
    assert result.reason == ("no plan for this category and grade: no plan covers actual "
                             "accident_disaster/public_facility grade IV; the catch-all plan 'general' v1 takes it")


def test_the_catch_all_never_outranks_a_covering_plan() -> None:
    plans = PlanSet.of([catch_all("a-catch-all"), plan("typhoon", hazards=["typhoon"]), plan("nature")])
    hit = match_plan(plans, incident())
    assert hit.plan is not None and hit.plan.id == "typhoon" and not hit.catch_all
    assert match_plan(plans, incident(hazard=None)).plan.id == "nature"  # type: ignore[union-attr]


def test_a_plan_excluded_by_status_falls_to_the_catch_all_and_the_reason_names_it() -> None:
    plans = PlanSet.of([plan("draft-typhoon", hazards=["typhoon"], status="draft"), catch_all()])
    actual = match_plan(plans, incident())
    assert actual.plan is not None and actual.plan.id == "general" and actual.catch_all
    assert "draft-typhoon (draft)" in actual.reason and "the catch-all plan 'general'" in actual.reason
    # An exercise may drill the draft: it covers the incident, so the catch-all is not needed.
    drill = match_plan(plans, incident(status="exercise"))
    assert drill.plan is not None and drill.plan.id == "draft-typhoon" and not drill.catch_all


def test_a_draft_catch_all_takes_drills_only_and_no_plan_says_so() -> None:
    plans = PlanSet.of([catch_all(status="draft")])
    actual = match_plan(plans, incident())
    assert actual.plan is None and not actual.catch_all
    assert "the catch-all plan 'general' is excluded too (draft" in actual.reason
    assert match_plan(plans, incident(status="exercise")).plan.id == "general"  # type: ignore[union-attr]


def test_a_retired_catch_all_is_no_catch_all() -> None:
    plans = PlanSet.of([catch_all(status="retired")])
    assert plans.catch_all is None
    result = match_plan(plans, incident())
    assert result.plan is None and result.reason == "no plan covers actual natural_disaster/meteorological/typhoon " \
                                                     "grade III"


def test_the_catch_all_is_filed_under_no_cell() -> None:
    plans = PlanSet.of([catch_all("b"), catch_all("a", status="draft"), plan("typhoon", hazards=["typhoon"])])
    assert plans.catch_all is not None and plans.catch_all.id == "a"  # lint refuses two; code stays stable
    assert all(p.id == "typhoon" for by_hazard in plans.index.values() for ps in by_hazard.values() for p in ps)


@pytest.mark.parametrize(("applies", "message"), [
    ({"catch_all": True, "category": "natural_disaster"}, "remove category"),
    ({"catch_all": True, "areas": ["440402100009"]}, "remove areas"),
    ({"catch_all": True, "matchers": [{"label": "place", "value": "school"}]}, "remove matchers"),
    ({"subtypes": ["fire"]}, "category is required"),
    ({"category": "natural_disaster", "uncovered": [{"category": "natural_disaster", "reason": {"zh": "x"}}]},
     "for the catch-all plan only"),
    ({"catch_all": True, "uncovered": [{"category": "natural_disaster", "subtypes": ["fire"], "reason": {"zh": "x"}}]},
     "not in category"),
])
def test_a_catch_all_covers_everything_and_only_it_lists_uncovered_cells(applies: dict[str, Any], message: str
                                                                         ) -> None:
    with pytest.raises(ValueError, match=message):
        Plan.model_validate({"id": "x", "version": 1, "title": {"zh": "x"}, "owner": "emergency",
                             "applies_to": applies, "levels": catch_all().model_dump()["levels"]})


def test_a_catch_all_needs_every_grade() -> None:
    levels = catch_all().model_dump()["levels"][:3]
    with pytest.raises(ValueError, match="needs a level for every grade; missing IV"):
        Plan.model_validate({"id": "x", "version": 1, "title": {"zh": "x"}, "owner": "emergency",
                             "applies_to": {"catch_all": True}, "levels": levels})
