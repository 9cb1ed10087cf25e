"""Small shared types and helpers for the models."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError


def _aware_utc(value: datetime) -> datetime:
    # Naive datetimes are ambiguous in a system that spans time zones: reject them rather than guess.
    if value.tzinfo is None:
        raise ValueError("datetime must carry a time zone offset, e.g. 2026-11-25T08:00:00+08:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 is a valid ISO 8601 time whose UTC instant is before year 1: a field error, not
        # a crash (pydantic turns only ValueError into one).
        raise ValueError("datetime is out of range once converted to UTC (years 1 to 9999)") from None


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe_validation(exc: ValidationError) -> str:
    """Every error of a validation on one line, `field.path: message; …`, for people reading a terminal."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


class Model(BaseModel):
    """Base for every Pingan model: unknown fields are errors, so a typo never silently drops data."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False, str_strip_whitespace=True)


class LocalizedText(Model):
    zh: str = Field(min_length=1)
    en: str | None = None

    def pick(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh
