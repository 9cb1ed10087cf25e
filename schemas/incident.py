"""The incident: what a report becomes once triage has accepted it."""

import hashlib
import re
from typing import Any

from pydantic import Field, model_validator

from pingan.schemas.areas import MAX_ALERT_AREAS, AlertArea, Placement
from pingan.schemas.common import Model, UtcDatetime
from pingan.schemas.taxonomy import (
    SUBTYPES_BY_CATEGORY,
    Category,
    Grade,
    IncidentState,
    IncidentStatus,
    Source,
    Subtype,
    WarningColour,
)


class Location(Model):
    area_code: str | None = Field(default=None, max_length=32, description="Administrative area code, e.g. 440305")
    area_name: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    placement: Placement | None = Field(default=None, description=(
        "Set by triage: the area path the report was placed in and how (a source's own value is replaced)"))

    @model_validator(mode="after")
    def _lat_lon_together(self) -> "Location":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class Reporter(Model):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    organisation: str | None = Field(default=None, max_length=200)


class Attachment(Model):
    """Something a source sent beside the report: a CAP <info> in another language, a voice recording…"""

    kind: str = Field(min_length=1, max_length=64, description="e.g. cap_info, recording, raw_alert")
    lang: str | None = Field(default=None, max_length=35)
    title: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=20_000)
    url: str | None = Field(default=None, max_length=2_000)
    data: dict[str, Any] = Field(default_factory=dict)


class IncidentReport(Model):
    """What a source submits: an incident before triage has given it an id."""

    source: Source = Source.api
    status: IncidentStatus = IncidentStatus.actual
    category: Category
    subtype: Subtype
    hazard: str | None = Field(
        default=None, max_length=64, description="Finer hazard within the subtype, e.g. typhoon or rainstorm"
    )
    grade: Grade
    warning_colour: WarningColour | None = None
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    location: Location = Field(default_factory=Location)
    areas: list[AlertArea] = Field(
        default_factory=list, max_length=MAX_ALERT_AREAS,
        description="Every area a warning says it concerns (CAP <area>: names, geocodes, polygons, circles); "
        "the district check reads them. `location` keeps the one place people see",
    )
    reporter: Reporter | None = None
    occurred_at: UtcDatetime | None = None
    dedup_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Reports with the same key within the correlation window join one incident. "
        "Derived from category, subtype, hazard and area (else the point to 3 decimals, else the title) when not "
        "given.",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _consistent_taxonomy(self) -> "IncidentReport":
        if self.subtype not in SUBTYPES_BY_CATEGORY[self.category]:
            allowed = ", ".join(sorted(SUBTYPES_BY_CATEGORY[self.category]))
            raise ValueError(f"subtype {self.subtype.value!r} is not in category {self.category.value!r}; "
                             f"allowed: {allowed}")
        if self.warning_colour is not None and self.category in (Category.social_security, Category.other):
            raise ValueError("warning_colour applies to natural, accident and public-health events only")
        return self

    def effective_dedup_key(self) -> str:
        if self.dedup_key:
            return self.dedup_key
        # The place: its area code, else its point to 3 decimals (about 110 m: two fires of one title in two places
        # are two events; reports of one fire a few metres apart share the key, the grid joins the rest), else the
        # title.
        point = f"@{self.location.lat:.3f},{self.location.lon:.3f}" if self.location.lat is not None \
            and self.location.lon is not None else None
        place = self.location.area_code or point or re.sub(r"\s+", " ", self.title.strip().lower())
        basis = "|".join([self.category.value, self.subtype.value, self.hazard or "", place])
        return "auto:" + hashlib.sha256(basis.encode()).hexdigest()[:24]


class Incident(IncidentReport):
    """An accepted incident, as stored and as carried on the `incidents` topic."""

    id: str = Field(min_length=1, max_length=64)
    dedup_key: str = Field(min_length=1, max_length=256)
    received_at: UtcDatetime
    state: IncidentState = IncidentState.open
    report_count: int = Field(default=1, ge=1)
    last_report_at: UtcDatetime | None = Field(default=None, description="When the latest correlated report came")
