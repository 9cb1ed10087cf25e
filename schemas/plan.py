"""The response plan (应急预案): a minimal shape that the plans issue deepens."""

from enum import StrEnum

from pydantic import Field, model_validator

from pingan.schemas.common import LocalizedText, Model
from pingan.schemas.notification import Recipient
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, Subtype


class PlanStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    retired = "retired"


class AppliesTo(Model):
    category: Category
    subtypes: list[Subtype] = Field(default_factory=list, description="Empty: every subtype of the category")
    hazards: list[str] = Field(default_factory=list, description="Empty: any hazard")
    grades: list[Grade] = Field(default_factory=lambda: list(Grade), min_length=1)

    @model_validator(mode="after")
    def _subtypes_in_category(self) -> "AppliesTo":
        wrong = [s.value for s in self.subtypes if s not in SUBTYPES_BY_CATEGORY[self.category]]
        if wrong:
            raise ValueError(f"subtypes {wrong} are not in category {self.category.value!r}")
        return self


class NotifyStep(Model):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    grades: list[Grade] = Field(default_factory=lambda: list(Grade), description="Grades this step runs at")
    recipients: list[Recipient] = Field(min_length=1)
    template: LocalizedText = Field(
        description="Message text; placeholders: {id} {title} {grade} {grade_name} {area} {category} {subtype} {plan}"
    )


class Plan(Model):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: int = Field(ge=1)
    title: LocalizedText
    status: PlanStatus = PlanStatus.approved
    applies_to: AppliesTo
    notify: list[NotifyStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> "Plan":
        ids = [s.id for s in self.notify]
        if len(ids) != len(set(ids)):
            raise ValueError(f"notify step ids must be unique, got {ids}")
        return self
