"""Small shared types and helpers for the models."""

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator


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


NUL_FREE = "pingan_nul_free"  # validation context: the caller has checked the whole input has no NUL


def without_nul(value: Any) -> Any:
    """`value` with every NUL character taken out of its strings (dict keys and nested values included)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class Model(BaseModel):
    """Base for every Pingan model: unknown fields are errors, so a typo never silently drops data. NUL characters
    are dropped from every string: no sender means one, and PostgreSQL's text columns refuse them, so a report that
    carried one was accepted and then failed triage for ever (issue 14, finding 5)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is not None and info.context.get(NUL_FREE):
            return data
        return without_nul(data)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *, strict: bool | None = None,
                            context: Any | None = None, **kwargs: Any) -> Self:
        """As pydantic's, but a document with no NUL skips the walk: JSON can carry a NUL only escaped, as \\u0000
        (a raw control character is invalid JSON), so one look at the text decides. The walk was 60% of parsing a
        RawEvent (115 µs of 1.3 KB, 43 without), and every stage parses every message (issue 15's profile)."""
        nul = "\\u0000" if isinstance(json_data, str) else b"\\u0000"
        if context is None or isinstance(context, dict):
            context = {k: v for k, v in (context or {}).items() if k != NUL_FREE}  # only this look may set it
            if nul not in json_data:
                context[NUL_FREE] = True
        return super().model_validate_json(json_data, strict=strict, context=context, **kwargs)


class LocalizedText(Model):
    zh: str = Field(min_length=1)
    en: str | None = None

    def pick(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh
