"""The situation report (态势研判, issue 17): one period's figures and the previous period's beside them.

This model is the report's one shape: `pingan sitrep --format json` is its `model_dump_json`, the HTML and PDF are
rendered from it, and the stored daily reports (`GET /v1/sitreps`) carry it. Exercise and test incidents are never
counted (IncidentStatus.actual only). Minutes are wall-clock minutes from the incident's receipt.
"""

from typing import Literal

from pydantic import Field

from pingan.schemas.common import Model, UtcDatetime

PeriodKind = Literal["day", "week", "month"]

# Said in the report itself, so a reader knows what "p90" means without the source.
PERCENTILE_DEFINITION = (
    "median: the middle value of the sorted times (the mean of the two middle ones for an even count); "
    "p90: nearest rank, the ceil(0.9 x n)-th smallest time"
)


class Period(Model):
    kind: PeriodKind
    start: UtcDatetime = Field(description="Inclusive")
    end: UtcDatetime = Field(description="Exclusive")
    previous_start: UtcDatetime = Field(description="The previous period of equal length, inclusive")
    previous_end: UtcDatetime = Field(description="Exclusive; equals start")
    timezone: str = Field(description="The district's time zone: local days and hours of the buckets")


class CountRow(Model):
    key: str = Field(description="The category, subtype, grade, area or state")
    current: int = Field(ge=0)
    previous: int = Field(ge=0)


class Breakdown(Model):
    category: list[CountRow] = Field(default_factory=list)
    subtype: list[CountRow] = Field(default_factory=list)
    grade: list[CountRow] = Field(default_factory=list)
    area: list[CountRow] = Field(default_factory=list)
    state: list[CountRow] = Field(default_factory=list, description="Each incident's state when the report was made")


class ResponseTime(Model):
    """One measure over the period's incidents: how long from receipt, against the activated plan level's target."""

    measure: Literal["first_notification", "first_acknowledgement", "close"]
    incidents: int = Field(ge=0, description="Incidents of the period with a plan or this measure")
    reached: int = Field(ge=0, description="Incidents where it happened (the time is known)")
    median_min: float | None = None
    p90_min: float | None = None
    with_target: int = Field(ge=0, description="Incidents whose plan level sets a target for this measure")
    met: int = Field(ge=0, description="Reached within the target")
    missed: int = Field(ge=0, description="Reached after the target, or not reached though the target has passed")
    target_rule: str = Field(description="Where the target comes from in the plan")


class ChannelCounts(Model):
    channel: str
    intended: int = Field(ge=0, description="Every notification the plans ordered on this channel")
    sent: int = Field(ge=0, description="Accepted by the channel (sent or delivered)")
    delivered: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int = Field(ge=0, description="Not settled yet (intended or sending)")


class RollCall(Model):
    notified: int = Field(ge=0, description="People called to a roll call (点名), per incident and step")
    confirmed: int = Field(ge=0)
    completion: float | None = Field(default=None, description="confirmed / notified, 0..1; none without roll calls")


class TaskCounts(Model):
    total: int = Field(ge=0)
    met: int = Field(ge=0, description="Done by the deadline")
    late: int = Field(ge=0, description="Done after the deadline")
    missed: int = Field(ge=0, description="Not done, deadline passed")
    not_due: int = Field(ge=0, description="Not done, deadline still ahead (or the level ended before it)")


class Releases(Model):
    available: bool = Field(description="False while this store has no release workflow: the figures are not known")
    published: int = Field(default=0, ge=0)
    incidents_with_release: int = Field(default=0, ge=0)
    time_to_first_release_median_min: float | None = None
    time_to_first_release_p90_min: float | None = None


class OpenIncident(Model):
    id: str
    title: str
    category: str
    subtype: str
    grade: str
    state: str
    area: str
    received_at: UtcDatetime
    open_hours: float = Field(description="Hours from receipt to when the report was made")


class AreaReports(Model):
    area: str
    incidents: int = Field(ge=0)
    reports: int = Field(ge=0, description="Reports joined into those incidents (report_count)")


class AreaCount(Model):
    """Incidents and reports of one area of the district's hierarchy (issue 18), this period and the previous one,
    from triage's placement path (location.placement), not the free-text area name."""

    code: str = Field(description="The area's code; '-' for incidents placed in no community")
    level: str = Field(description="community or grid; 'none' for the unplaced row")
    name_zh: str | None = None
    name_en: str | None = None
    parent: str | None = Field(default=None, description="A grid's community")
    incidents: int = Field(ge=0)
    incidents_previous: int = Field(ge=0)
    reports: int = Field(ge=0, description="Reports joined into those incidents (report_count)")
    reports_previous: int = Field(ge=0)


class Bucket(Model):
    start: UtcDatetime
    label: str = Field(description="Local hour (HH:00) for a day, local date (MM-DD) for a week or a month")
    current: int = Field(ge=0)


class Sitrep(Model):
    """A situation report (态势研判)."""

    generated_at: UtcDatetime
    period: Period
    incidents: int = Field(ge=0, description="Real incidents received in the period")
    incidents_previous: int = Field(ge=0)
    reports: int = Field(ge=0, description="Reports (警情) joined into the period's incidents")
    exercise_excluded: int = Field(ge=0, description="Exercise and test incidents of the period, not counted")
    merged_excluded: int = Field(
        default=0, ge=0, description="Incidents of the period merged into another (the same event): counted as it")
    by: Breakdown
    response_times: list[ResponseTime]
    percentile_definition: str = PERCENTILE_DEFINITION
    notifications: list[ChannelCounts]
    roll_call: RollCall
    tasks: TaskCounts
    releases: Releases
    still_open: list[OpenIncident] = Field(description="Real incidents not closed, received before the period ended")
    top_areas: list[AreaReports] = Field(description="The areas with most reports, at most 5")
    over_time: list[Bucket]
    by_community: list[AreaCount] = Field(default_factory=list, description=(
        "Every community with an incident in either period, most incidents first, then the unplaced ('-')"))
    by_grid: list[AreaCount] = Field(default_factory=list, description=(
        "The grids of the top communities (at most 3, in by_community's order), each community's grids together"))
