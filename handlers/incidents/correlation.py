"""Reports join their event: does a report that shares no dedup key with an open incident still belong to one?

A CAP typhoon warning opens an incident; residents then text about fallen trees and flooding. Their texts carry no
CAP key, but they are the same event, and a second activation would text every department twice. A report joins an
open incident, from any source, when it is of the same category and subtype (or is what that event brings: a flood
under a typhoon warning), its time is within the join window of
the incident's latest report, and their areas fit: one area contains the other (area codes are hierarchical, so a
prefix), or the incident is a warning from a monitoring source (CAP, Alertmanager) with no narrower area, i.e. for
the whole district. Reports triage placed in a community or a grid also fit when one's area holds the other's.
A report with no area joins only an incident that covers more than one community, and two
reports from people that name no place never join each other by this rule: a second fire somewhere unnamed must not
be hidden in the first one, and a duplicate is better than silence. Pure: data in, decision out.
"""

from datetime import datetime, timedelta

from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.taxonomy import IncidentState, Source, Subtype

# Counted facts a report may carry as labels; the incident keeps the largest figure any of its reports gave, and the
# plan's escalate_grade rules (casualties_gte) read them.
COUNTED_FACTS = ("casualties", "deaths", "injured", "trapped", "missing")
# A community's code is the town's (9 digits) plus 3; anything shorter covers several communities.
COMMUNITY_CODE_LEN = 12
# What an event brings that people report as something else: under a typhoon or rainstorm, residents text about
# flooding, landslides and the sea coming in. Such a report joins the weather event, not an incident of its own.
CONSEQUENCES: dict[tuple[Subtype, str | None], frozenset[Subtype]] = {
    (Subtype.meteorological, "typhoon"): frozenset({Subtype.flood_drought, Subtype.marine, Subtype.geological}),
    (Subtype.meteorological, "rainstorm"): frozenset({Subtype.flood_drought, Subtype.geological}),
}

# Sources whose incidents without an area are warnings for the whole district, not a report from an unnamed place.
WARNING_SOURCES = frozenset({Source.cap, Source.alertmanager})
NO_JOIN_LABEL = "split_from"  # a report split out of an incident by the duty officer must not join one again
MAX_PLACES_CHARS = 500


def joinable(report: IncidentReport) -> bool:
    """Reports from people join events by fit; a monitoring source's alert is its own event unless its key matches
    (two different alerts of one kind are two things to look at, not one)."""
    # A trend warning is its own event: it joins only its own series' open warning, by its dedup key.
    return report.source not in WARNING_SOURCES and report.source is not Source.trend \
        and NO_JOIN_LABEL not in report.labels


FINE_LEVELS = frozenset({"community", "grid"})  # placed this deep, a report says where it is


def _placed_path(x: IncidentReport) -> list[str]:
    """The codes triage placed it in, widest first, when it was placed in a community or a grid; else none."""
    placement = x.location.placement
    deepest = placement.deepest if placement is not None and not placement.outside else None
    return [a.code for a in placement.path] if placement and deepest and deepest.level in FINE_LEVELS else []


def areas_fit(report: IncidentReport, incident: Incident) -> bool:
    # Both placed (issue 18): they fit when one's deepest area holds the other's (the same grid, or a grid of the
    # community the other names), whatever their words: two texts about one fire from one grid are one event.
    # This only adds joins: what the area codes join (a town-wide warning and a community's text) still joins.
    mine_path, theirs_path = _placed_path(report), _placed_path(incident)
    if mine_path and theirs_path and (mine_path[-1] in theirs_path or theirs_path[-1] in mine_path):
        return True
    theirs, mine = incident.location.area_code, report.location.area_code
    if not theirs:
        return incident.source in WARNING_SOURCES
    if not mine:
        return len(theirs) < COMMUNITY_CODE_LEN
    return theirs.startswith(mine) or mine.startswith(theirs)


def causes(subtype: Subtype) -> list[Subtype]:
    """The subtypes of the events a report of `subtype` may belong to: its own, and the weather that brings it."""
    return [subtype, *sorted({cause for (cause, _), brought in CONSEQUENCES.items() if subtype in brought})]


def same_event_kind(report: IncidentReport, incident: Incident) -> bool:
    if incident.category != report.category:
        return False
    if incident.subtype == report.subtype:
        return True
    hazard = (incident.hazard or "").lower() or None
    return report.subtype in CONSEQUENCES.get((incident.subtype, hazard), frozenset())


def fits(report: IncidentReport, at: datetime, incident: Incident, window: timedelta) -> bool:
    latest = incident.last_report_at or incident.received_at
    return (incident.state is not IncidentState.closed and incident.status == report.status
            and same_event_kind(report, incident)
            and timedelta(0) - window <= at - latest <= window and areas_fit(report, incident))


def best_fit(report: IncidentReport, at: datetime, candidates: list[Incident], window: timedelta) -> Incident | None:
    """The open incident this report belongs to, if any: the same hazard first, then the closest area, then the
    latest report."""
    if not joinable(report):
        return None
    fitting = [c for c in candidates if fits(report, at, c, window)]
    if not fitting:
        return None

    def rank(incident: Incident) -> tuple[bool, int, datetime]:
        same_hazard = bool(report.hazard) and (incident.hazard or "").lower() == (report.hazard or "").lower()
        return same_hazard, len(incident.location.area_code or ""), incident.last_report_at or incident.received_at

    return max(fitting, key=rank)


def merged_facts(incident: Incident, report: IncidentReport) -> dict[str, str]:
    """The incident's labels once the report's facts are in: counted facts keep their largest figure (a later
    report of 3 deaths is news; a later report of 1 is not a correction), and named places accumulate."""
    labels = dict(incident.labels)
    for fact in COUNTED_FACTS:
        figures = [n for n in (_count(incident.labels.get(fact)), _count(report.labels.get(fact))) if n is not None]
        if figures:
            labels[fact] = str(max(figures))
    # The plans' casualty rules read `casualties`: deaths are casualties too.
    deaths = _count(labels.get("deaths"))
    if deaths is not None and deaths > (_count(labels.get("casualties")) or 0):
        labels["casualties"] = str(deaths)
    place = report.location.area_name
    if place:
        places = [p for p in labels.get("places", "").split("、") if p]
        if place not in places and place != incident.location.area_name:
            joined = "、".join([*places, place])
            if len(joined) <= MAX_PLACES_CHARS:
                labels["places"] = joined
    return labels


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        return None
    return n if n >= 0 else None
