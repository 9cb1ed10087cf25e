"""How Alertmanager alert labels become Pingan's taxonomy: category, subtype, hazard, grade, area and status.

Split out of alertmanager.py (the webhook's models and parsing): the mapping is configuration a deployment may
replace (schemas/adapters/config.py), the parse is fixed by the webhook format. `classify` is pure: labels in, the
fields and the warnings that name any label value it had to ignore.
"""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pingan.schemas.incident import Location
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, IncidentStatus, Subtype

_CATEGORY_OF: dict[Subtype, Category] = {sub: cat for cat, subs in SUBTYPES_BY_CATEGORY.items() for sub in subs}
_GRADE_ALIASES = {"1": Grade.I, "2": Grade.II, "3": Grade.III, "4": Grade.IV}


class LabelRule(BaseModel):
    """Sets taxonomy fields for alerts whose labels match. `match` values are exact; `match_re` values are regular
    expressions matched against the whole value (anchored, like Alertmanager's =~ matchers). All must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    category: Category | None = None
    subtype: Subtype | None = None
    hazard: str | None = Field(default=None, max_length=64)
    grade: Grade | None = None
    area_code: str | None = Field(default=None, max_length=32)
    area_name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _valid(self) -> "LabelRule":
        if not self.match and not self.match_re:
            raise ValueError("a rule needs at least one matcher")
        for pattern in self.match_re.values():
            re.compile(pattern)
        if self.category and self.subtype and self.subtype not in SUBTYPES_BY_CATEGORY[self.category]:
            raise ValueError(f"subtype {self.subtype.value!r} is not in category {self.category.value!r}")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items()) and all(
            k in labels and re.fullmatch(p, labels[k]) for k, p in self.match_re.items()
        )


class AlertmanagerMapping(BaseModel):
    """How alert labels become category, subtype, hazard, grade, area and status.

    Precedence, per field: the explicit labels (``pingan_category``, ``pingan_subtype``, ``pingan_hazard``,
    ``pingan_grade``, ``pingan_status``, ``area_code``, ``area``), then the first matching rule that sets the field,
    then (grade only) the ``severity`` label, then the defaults. When the explicit labels name a category or subtype
    they decide the taxonomy alone; a category without a subtype takes `subtype_for_category`.

    DEFAULT: no rules; category/subtype accident_disaster/public_facility (公共设施和设备事故) because what reaches
    us through Alertmanager is infrastructure monitoring; severity critical/page -> II, warning/error/major/high/
    severe -> III, info/none/low/minor -> IV, anything else IV. Grade I (特别重大) is never derived from a severity:
    only an explicit ``pingan_grade`` label (I..IV or 1..4) sets it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[LabelRule, ...] = ()
    severity_label: str = "severity"
    severity_grades: dict[str, Grade] = Field(default_factory=lambda: {
        "critical": Grade.II, "page": Grade.II,
        "warning": Grade.III, "error": Grade.III, "major": Grade.III, "high": Grade.III, "severe": Grade.III,
        "info": Grade.IV, "none": Grade.IV, "low": Grade.IV, "minor": Grade.IV,
    })
    default_category: Category = Category.accident_disaster
    default_subtype: Subtype = Subtype.public_facility
    default_hazard: str | None = Field(default=None, max_length=64)
    default_grade: Grade = Grade.IV
    subtype_for_category: dict[Category, Subtype] = Field(default_factory=lambda: {
        Category.natural_disaster: Subtype.meteorological,
        Category.accident_disaster: Subtype.public_facility,
        Category.public_health: Subtype.infectious_disease,
        Category.social_security: Subtype.cyber,
        Category.other: Subtype.general,
    })
    category_label: str = "pingan_category"
    subtype_label: str = "pingan_subtype"
    hazard_label: str = "pingan_hazard"
    grade_label: str = "pingan_grade"
    status_label: str = "pingan_status"
    area_code_label: str = "area_code"
    area_name_label: str = "area"

    @model_validator(mode="after")
    def _consistent(self) -> "AlertmanagerMapping":
        if self.default_subtype not in SUBTYPES_BY_CATEGORY[self.default_category]:
            raise ValueError("default_subtype is not in default_category")
        for cat in Category:
            sub = self.subtype_for_category.get(cat)
            if sub is None or sub not in SUBTYPES_BY_CATEGORY[cat]:
                raise ValueError(f"subtype_for_category needs a subtype of {cat.value!r}")
        return self


DEFAULT_MAPPING = AlertmanagerMapping()


class Classified(BaseModel):
    category: Category
    subtype: Subtype
    hazard: str | None
    grade: Grade
    status: IncidentStatus
    location: Location
    warnings: list[str]


def _enum_label(enum: type[Any], raw: str | None, name: str, warnings: list[str]) -> Any:
    if raw is None:
        return None
    try:
        return enum(raw.strip().lower())
    except ValueError:
        warnings.append(f"{name}={raw[:40]!r} unknown")
        return None


def _grade_label(raw: str | None, name: str, warnings: list[str]) -> Grade | None:
    if raw is None:
        return None
    value = raw.strip().upper()
    grade = _GRADE_ALIASES.get(value) or next((g for g in Grade if g.value == value), None)
    if grade is None:
        warnings.append(f"{name}={raw[:40]!r} unknown")
    return grade


def classify(labels: dict[str, str], m: AlertmanagerMapping) -> Classified:
    warnings: list[str] = []
    rules = [r for r in m.rules if r.matches(labels)]

    def from_rules(attr: str) -> Any:
        return next((getattr(r, attr) for r in rules if getattr(r, attr) is not None), None)

    cat = _enum_label(Category, labels.get(m.category_label), m.category_label, warnings)
    sub = _enum_label(Subtype, labels.get(m.subtype_label), m.subtype_label, warnings)
    if cat is None and sub is None:
        cat, sub = from_rules("category"), from_rules("subtype")
    if cat is None and sub is None:
        cat, sub = m.default_category, m.default_subtype
    elif cat is None:
        cat = _CATEGORY_OF[sub]
    elif sub is None or sub not in SUBTYPES_BY_CATEGORY[cat]:
        if sub is not None:
            warnings.append(f"subtype {sub.value!r} is not in category {cat.value!r}")
        sub = m.default_subtype if m.default_subtype in SUBTYPES_BY_CATEGORY[cat] else m.subtype_for_category[cat]

    hazard = labels.get(m.hazard_label)
    if hazard is not None and len(hazard) > 64:
        warnings.append(f"{m.hazard_label} longer than 64 characters")
        hazard = None
    hazard = hazard or from_rules("hazard") or m.default_hazard

    severity = labels.get(m.severity_label, "").strip().lower()
    grade = (_grade_label(labels.get(m.grade_label), m.grade_label, warnings) or from_rules("grade")
             or m.severity_grades.get(severity) or m.default_grade)
    status = _enum_label(IncidentStatus, labels.get(m.status_label), m.status_label, warnings) or IncidentStatus.actual

    area_code = labels.get(m.area_code_label)
    if area_code is not None and len(area_code) > 32:
        warnings.append(f"{m.area_code_label} longer than 32 characters")
        area_code = None
    area_name = labels.get(m.area_name_label) or from_rules("area_name")
    area_code = area_code or from_rules("area_code")
    location = Location(area_code=area_code, area_name=area_name[:200] if area_name else None)
    return Classified(category=cat, subtype=sub, hazard=hazard, grade=grade, status=status, location=location,
                       warnings=warnings)
