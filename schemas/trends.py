"""Trend early warning rules (趋势预警, issue 18): which series of report counts are watched, and how.

A series is the number of *reports* (not incidents) of one category (and optionally one subtype) in one area of a
level (district, town/sub-district, community, grid) per interval (an hour or a day). A rule chooses, for every
series of its level × category [× subtype], the interval, the detector (EARS C1, C2, C3 or a CUSUM,
pingan.handlers.trends) and its thresholds. The shipped rules are plans/trends/rules.yaml; `pingan trends lint`
checks a rules file with `file:line:col` messages.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from pingan.schemas.common import LocalizedText, Model
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Subtype

TREND_RULES_FILE = "trends/rules.yaml"  # under the plans directory


class AreaLevel(StrEnum):
    district = "district"  # 区: the whole area this office covers
    town = "town"  # 街道/镇 (sub-district), e.g. 唐家湾镇
    community = "community"  # 社区
    grid = "grid"  # 网格


class Interval(StrEnum):
    hourly = "hourly"
    daily = "daily"

    @property
    def seconds(self) -> int:
        return 3600 if self is Interval.hourly else 86_400


class Detector(StrEnum):
    c1 = "C1"
    c2 = "C2"
    c3 = "C3"
    cusum = "CUSUM"


# The published thresholds (Hutwagner et al. 2003): C1 and C2 alarm above 3 standard deviations, C3 above 2.
DEFAULT_THRESHOLDS: dict[Detector, float] = {Detector.c1: 3.0, Detector.c2: 3.0, Detector.c3: 2.0,
                                             Detector.cusum: 4.0}


class TrendRule(Model):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: LocalizedText | None = None
    level: AreaLevel
    category: Category
    subtype: Subtype | None = None
    interval: Interval = Interval.daily
    detector: Detector = Detector.c2
    threshold: float | None = Field(default=None, gt=0, le=100,
                                    description="C1/C2/C3: the statistic's alarm level; CUSUM: the decision interval h")
    k: float | None = Field(default=None, ge=0, le=10, description="CUSUM only: the reference value k")
    min_sigma: float = Field(default=1.0, gt=0, le=100, description="the standard-deviation floor, in reports")
    min_count: int = Field(default=3, ge=1, le=100_000,
                           description="no alarm on fewer reports than this in the current interval")
    history: int = Field(default=28, ge=12, le=400, description="intervals read back for the detector")

    @model_validator(mode="after")
    def _consistent(self) -> TrendRule:
        if self.subtype is not None and self.subtype not in SUBTYPES_BY_CATEGORY[self.category]:
            raise ValueError(f"subtype {self.subtype.value!r} is not a subtype of {self.category.value!r}")
        if self.k is not None and self.detector is not Detector.cusum:
            raise ValueError(f"k is the CUSUM's reference value; detector {self.detector.value} has none")
        return self

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.detector]

    @property
    def effective_k(self) -> float:
        return self.k if self.k is not None else 0.5

    def covers(self, category: str, subtype: str | None) -> bool:
        return self.category.value == category and (self.subtype is None or self.subtype.value == subtype)

    def series_subtype(self) -> str:
        """The subtype part of the series key: '' when the rule counts the whole category."""
        return self.subtype.value if self.subtype is not None else ""


class TrendRules(Model):
    version: int = Field(ge=1)
    rules: list[TrendRule] = Field(default_factory=list, max_length=1000)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[TrendRule]) -> list[TrendRule]:
        ids: set[str] = set()
        series: dict[tuple[str, str, str, str], str] = {}
        for i, rule in enumerate(rules):
            if rule.id in ids:
                raise ValueError(f"rules[{i}]: duplicate id {rule.id!r}")
            ids.add(rule.id)
            key = (rule.level.value, rule.category.value, rule.series_subtype(), rule.interval.value)
            if key in series:
                raise ValueError(f"rules[{i}] ({rule.id}): the same series as {series[key]!r} "
                                 f"({' × '.join(k for k in key if k)}); one rule per series")
            series[key] = rule.id
        return rules
