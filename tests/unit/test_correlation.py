"""Reports join their event across sources (handlers/incidents/correlation.py) and carry their facts in."""

from datetime import UTC, datetime, timedelta

from pingan.handlers.incidents.correlation import best_fit, fits, merged_facts
from pingan.handlers.incidents.triage import triage
from pingan.schemas.events import RawEvent, RawKind, TriageOutcome
from pingan.schemas.incident import Incident, IncidentReport, Location
from pingan.schemas.taxonomy import Category, Grade, IncidentState, IncidentStatus, Source, Subtype

T0 = datetime(2026, 8, 23, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOWN, TANGJIA, QIAO = "440402100", "440402100001", "440402100009"


def typhoon_warning(**changes: object) -> Incident:
    fields: dict[str, object] = dict(
        id="INC-TYPHOON001", source=Source.cap, category=Category.natural_disaster, subtype=Subtype.meteorological,
        hazard="typhoon", grade=Grade.II, title="台风橙色预警", dedup_key="cap:obs:hato-1", received_at=T0,
        last_report_at=T0, location=Location(area_code=TOWN, area_name="唐家湾镇"))
    fields.update(changes)
    return Incident(**fields)  # type: ignore[arg-type]


def text(title: str = "大树倒了压住车", area: str | None = TANGJIA, name: str | None = "唐家社区",
         hazard: str | None = None, **labels: str) -> IncidentReport:
    return IncidentReport(source=Source.hotline_sms, category=Category.natural_disaster,
                          subtype=Subtype.meteorological, hazard=hazard, grade=Grade.IV, title=title,
                          location=Location(area_code=area, area_name=name), labels=labels)


def test_a_citizen_text_inside_the_warned_area_joins_the_warning() -> None:
    warning = typhoon_warning()
    assert best_fit(text(), T0 + timedelta(minutes=20), [warning], HOUR) == warning


def test_no_join_across_category_status_time_or_area() -> None:
    warning = typhoon_warning(location=Location(area_code=QIAO, area_name="淇澳社区"))
    at = T0 + timedelta(minutes=5)
    assert not fits(text(), at, warning, HOUR)  # Tangjia is not Qi'ao
    assert not fits(text(), T0 + 2 * HOUR, typhoon_warning(), HOUR)  # too late
    assert not fits(text(), at, typhoon_warning(status=IncidentStatus.exercise), HOUR)  # a drill stays a drill
    assert not fits(text(), at, typhoon_warning(state=IncidentState.closed), HOUR)
    fire = text().model_copy(update={"category": Category.accident_disaster, "subtype": Subtype.fire})
    assert not fits(fire, at, typhoon_warning(), HOUR)


def test_a_report_without_a_place_joins_only_an_incident_wider_than_a_community() -> None:
    at = T0 + timedelta(minutes=5)
    assert fits(text(area=None, name=None), at, typhoon_warning(), HOUR)  # the town
    community_fire = typhoon_warning(source=Source.hotline_sms, location=Location(area_code=TANGJIA))
    assert not fits(text(area=None, name=None), at, community_fire, HOUR)
    # Two people's reports that name no place never join each other this way: duplicate, not silence.
    unnamed = typhoon_warning(source=Source.hotline_sms, location=Location())
    assert not fits(text(area=None, name=None), at, unnamed, HOUR)
    # A district-wide CAP warning with no area at all takes any report in the district.
    assert fits(text(), at, typhoon_warning(location=Location()), HOUR)


def test_the_same_hazard_and_the_closest_area_win() -> None:
    town = typhoon_warning(id="INC-TOWN000001", hazard="rainstorm")
    near = typhoon_warning(id="INC-NEAR000001", location=Location(area_code=TANGJIA))
    assert best_fit(text(hazard="typhoon"), T0, [town, near], HOUR) == near
    assert best_fit(text(hazard="rainstorm"), T0, [town, near], HOUR) == town


def test_a_split_report_never_joins_again_nor_does_a_monitoring_alert() -> None:
    assert best_fit(text(split_from="INC-TYPHOON001"), T0, [typhoon_warning()], HOUR) is None
    alert = text().model_copy(update={"source": Source.alertmanager})
    assert best_fit(alert, T0, [typhoon_warning()], HOUR) is None  # an alert is its own event unless its key matches


def test_facts_keep_the_largest_figure_deaths_count_as_casualties_and_places_accumulate() -> None:
    warning = typhoon_warning(labels={"casualties": "1"})
    labels = merged_facts(warning, text(deaths="3", trapped="2"))
    assert labels == {"casualties": "3", "deaths": "3", "trapped": "2", "places": "唐家社区"}
    assert merged_facts(warning.model_copy(update={"labels": labels}), text(deaths="1", name="淇澳社区"))[
        "casualties"] == "3"
    assert merged_facts(warning, text(casualties="many"))["casualties"] == "1"  # not a number: ignored


def test_triage_correlates_the_report_and_carries_its_facts_into_the_incident() -> None:
    event = RawEvent(event_id="e1", kind=RawKind.report, proposed_incident_id="INC-NEW0000001",
                     received_at=T0 + timedelta(minutes=30), report=text(deaths="3"))
    decision = triage(event, typhoon_warning(), HOUR)
    assert decision.outcome is TriageOutcome.correlated
    assert decision.incident.id == "INC-TYPHOON001" and decision.incident.report_count == 2
    assert decision.incident.labels["casualties"] == "3"
    details = decision.actions[0].details
    assert details["joined_by"] == "same event" and details["source"] == "hotline_sms"
    assert details["facts"] == {"deaths": "3", "casualties": "3", "places": "唐家社区"}


def test_a_flood_or_landslide_under_a_typhoon_joins_it_but_not_under_a_heat_warning() -> None:
    at = T0 + timedelta(minutes=5)
    flood = text("水浸街").model_copy(update={"subtype": Subtype.flood_drought})
    landslide = text("山泥倾泻").model_copy(update={"subtype": Subtype.geological})
    assert fits(flood, at, typhoon_warning(), HOUR) and fits(landslide, at, typhoon_warning(), HOUR)
    assert not fits(flood, at, typhoon_warning(hazard="heat"), HOUR)
    assert not fits(text(), at, typhoon_warning(subtype=Subtype.flood_drought, hazard=None), HOUR)  # not the reverse
