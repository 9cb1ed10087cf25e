"""Prometheus Alertmanager webhook (message version 4) to IntakeItems. Pure: bytes in, items out. The label mapping
(category, grade, area from labels) is am_mapping.py.

Each alert of the notification group becomes one IntakeItem:

* ``dedup_key`` is ``"am:" + fingerprint``, or ``"am:" + sha256(sorted labels)`` when the alert has no fingerprint
  (Alertmanager < 0.19, trimmed fixtures). A firing alert and its later resolve share the key, so the resolve closes
  the incident the firing alert opened.
* ``kind`` is ``report`` for ``firing`` and ``close`` for ``resolved``; an alert without its own status takes the
  group's, and an alert with neither is rejected (the sender must say which it is).
* ``source_key`` is ``am:{groupKey}:{fingerprint or labelhash}:{startsAt}:{status}``: Alertmanager re-sends the same
  alert on every group flush and retry with the same startsAt, so those collapse to one event, while the resolve (a
  new status) is a new event. startsAt is kept verbatim: a retry is byte-identical.
* The intake token's binding (web/intake_tokens.py) is the alert's source, ``am_source`` (``bind_source``): a named
  binding's keys are ``am:<name>:…``, so one Alertmanager's resolve never closes another's incident; the single
  token's (``alertmanager``) keep the keys above, so incidents opened before bindings still close.

Decisions where the webhook format leaves room:

* ``version`` other than "4" (or missing) is accepted and flagged in the ``am_version_warning`` label, and logged as a
  warning: rejecting would answer an old or future Alertmanager with 4xx, which it does not retry, and an alert would
  be lost. Version 3 (old Alertmanager releases) sent ``groupKey`` as a number: it is read as its decimal text. A
  payload that no longer fits the v4 shape is still rejected by validation.
* Bad ``pingan_*``/``area_code`` label values do not reject the webhook for the same reason: they are ignored and
  named in ``am_mapping_warning`` so the duty room sees the rule that needs fixing.
* Labels are copied sorted by key, at most 64, keys cut to 64 and values to 256 characters; ``am_labels_dropped``
  counts what did not fit. Our own ``am_*`` labels overwrite alert labels of the same name.
"""

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# The mapping's names stay importable from here (config.py, web/, tests import them from this module).
from pingan.schemas.adapters.am_mapping import DEFAULT_MAPPING, AlertmanagerMapping, LabelRule, classify
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.limits import (
    DEFAULT_LIMITS,
    IntakeLimits,
    check_alert_count,
    check_json_depth,
    checkpoint,
)
from pingan.schemas.events import IntakeItem, RawKind
from pingan.schemas.incident import Attachment, IncidentReport
from pingan.schemas.taxonomy import Source

log = logging.getLogger("pingan.intake.alertmanager")

MAX_LABELS = 64
MAX_LABEL_KEY = 64
MAX_LABEL_VALUE = 256
_SOURCE_KEY_MAX = 300  # IntakeItem.source_key

__all__ = ["DEFAULT_MAPPING", "SINGLE_SOURCE", "AlertmanagerMapping", "AmAlert", "AmWebhook", "LabelRule",
           "bind_source", "label_hash", "parse_alertmanager"]


# --- The webhook payload. extra="allow": Alertmanager has added fields over versions (fingerprint, truncatedAlerts).

def _none_is_empty(value: Any) -> Any:
    # Go encodes a nil map as null; treat it as the empty map it means.
    return {} if value is None else value


def _number_as_text(value: Any) -> Any:
    # Webhook version 3 sent groupKey as a uint64; bool is an int in Python, and no Alertmanager sends one.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


StrMap = Annotated[dict[str, str], BeforeValidator(_none_is_empty)]
AmStatus = Literal["firing", "resolved"]


class AmAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: AmStatus | None = None
    labels: dict[str, str]
    annotations: StrMap = Field(default_factory=dict)
    startsAt: str | None = Field(default=None, max_length=64)
    endsAt: str | None = Field(default=None, max_length=64)
    generatorURL: str | None = None
    fingerprint: str | None = Field(default=None, max_length=128)


class AmWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str | int | None = None
    groupKey: Annotated[str | None, BeforeValidator(_number_as_text)] = None
    truncatedAlerts: int = Field(default=0, ge=0)
    status: AmStatus | None = None
    receiver: str | None = None
    groupLabels: StrMap = Field(default_factory=dict)
    commonLabels: StrMap = Field(default_factory=dict)
    commonAnnotations: StrMap = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[AmAlert]


# --- Parsing.

def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _from_validation(exc: ValidationError, source: str, prefix: str = "") -> IntakeError:
    first = exc.errors()[0]
    more = len(exc.errors()) - 1
    path = _field_path(tuple(first["loc"]))
    field = f"{prefix}.{path}" if prefix and path else (prefix or path or None)
    return IntakeError(first["msg"] + (f" (and {more} more)" if more else ""), field=field, source=source)


def label_hash(labels: dict[str, str]) -> str:
    """sha256 of the label set, independent of key order: the alert's identity when it carries no fingerprint."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _occurred_at(raw: str | None, field: str, source: str) -> datetime | None:
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw)  # 3.11 reads RFC 3339 with Z and Go's nanoseconds (cut to micro)
    except ValueError:
        raise IntakeError(f"not an RFC 3339 time: {raw!r}", field=field, source=source) from None
    if when.tzinfo is None:
        raise IntakeError("time without a UTC offset", field=field, source=source)
    if when.year <= 1:  # Go's zero time.Time, "0001-01-01T00:00:00Z": not set
        return None
    return when.astimezone(UTC)


def _bounded(labels: dict[str, str]) -> tuple[dict[str, str], int]:
    items = sorted(labels.items())
    kept = {k[:MAX_LABEL_KEY]: v[:MAX_LABEL_VALUE] for k, v in items[:MAX_LABELS]}
    return kept, len(items) - min(len(items), MAX_LABELS)


def _source_key(group_key: str, ident: str, starts_at: str, status: str) -> str:
    key = f"am:{group_key}:{ident}:{starts_at}:{status}"
    if len(key) > _SOURCE_KEY_MAX:
        # groupKeys from nested routes carry whole regex matchers; a digest keeps the key unique and within bounds.
        digest = hashlib.sha256(group_key.encode()).hexdigest()[:32]
        key = f"am:sha256:{digest}:{ident}:{starts_at}:{status}"
    return key


def parse_alertmanager(data: bytes, mapping: AlertmanagerMapping | None = None, source_name: str = "body",
                       limits: IntakeLimits = DEFAULT_LIMITS) -> list[IntakeItem]:
    """One IntakeItem per alert of an Alertmanager webhook notification; IntakeError for anything we cannot read,
    IntakeTooLarge for more alerts than `limits` allow (counted before any alert is validated)."""
    m = mapping or DEFAULT_MAPPING
    check_json_depth(data, source_name)
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as exc:
        raise IntakeError(f"invalid JSON: {exc.msg}", line=exc.lineno, col=exc.colno, source=source_name) from None
    except UnicodeDecodeError:
        raise IntakeError("body is not UTF-8 JSON", source=source_name) from None
    check_alert_count(raw, limits, source_name)
    try:
        hook = AmWebhook.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation(exc, source_name) from None

    common: dict[str, str] = {}
    version = None if hook.version is None else str(hook.version)
    numeric_key = isinstance(raw, dict) and isinstance(raw.get("groupKey"), int)
    if version != "4" or numeric_key:
        warning = f"webhook version {version!r} is not 4; read as v4" if version != "4" else "webhook version 4"
        warning += "; its numeric groupKey read as text" if numeric_key else ""
        common["am_version_warning"] = warning
        log.warning("%s: Alertmanager %s", source_name, warning)
    for name, value in (("am_receiver", hook.receiver), ("am_group_key", hook.groupKey),
                        ("am_external_url", hook.externalURL)):
        if value:
            common[name] = value[:MAX_LABEL_VALUE]
    if hook.truncatedAlerts > 0:
        common["am_truncated_alerts"] = str(hook.truncatedAlerts)

    items: list[IntakeItem] = []
    for i, alert in enumerate(hook.alerts):
        checkpoint()  # the parse's CPU budget (limits.py)
        where = f"alerts[{i}]"
        status = alert.status or hook.status
        if status is None:
            raise IntakeError("no status: neither the alert nor the notification says firing or resolved",
                              field=f"{where}.status", source=source_name)
        ident = alert.fingerprint or label_hash(alert.labels)
        labels, dropped = _bounded(alert.labels)
        labels.update(common)
        if dropped:
            labels["am_labels_dropped"] = str(dropped)
        c = classify(alert.labels, m)
        if c.warnings:
            labels["am_mapping_warning"] = "; ".join(c.warnings)[:MAX_LABEL_VALUE]
        ann = alert.annotations
        title = ann.get("summary") or ann.get("title") or alert.labels.get("alertname") or f"Alertmanager alert {ident}"
        description = ann.get("description") or ann.get("message") or ""
        url = alert.generatorURL if alert.generatorURL and len(alert.generatorURL) <= 2_000 else None
        try:
            report = IncidentReport(
                source=Source.alertmanager, status=c.status, category=c.category, subtype=c.subtype, hazard=c.hazard,
                grade=c.grade, title=title[:500], description=description[:20_000], location=c.location,
                occurred_at=_occurred_at(alert.startsAt, f"{where}.startsAt", source_name),
                dedup_key=f"am:{ident}", labels=labels,
                attachments=[Attachment(kind="raw_alert", url=url, data=raw["alerts"][i])],
            )
            items.append(IntakeItem(kind=RawKind.report if status == "firing" else RawKind.close, report=report,
                                    source_key=_source_key(hook.groupKey or "", ident, alert.startsAt or "", status)))
        except ValidationError as exc:
            raise _from_validation(exc, source_name, where) from None
    return items


SINGLE_SOURCE = "alertmanager"  # the single-token form's binding: the keys of before bindings existed


def _in_namespace(key: str | None, name: str, limit: int) -> str | None:
    key = f"am:{name}:{key.removeprefix('am:')}" if key else None
    return f"am:{name}:sha256:{hashlib.sha256(key.encode()).hexdigest()}" if key and len(key) > limit else key


def bind_source(items: list[IntakeItem], name: str) -> list[IntakeItem]:
    """The items as they came through binding `name`: labelled ``am_source`` (written last, so an alert's own labels
    cannot claim another binding), and for a named binding the dedup and source keys in its namespace."""
    single = name == SINGLE_SOURCE
    return [item.model_copy(update={
        "source_key": item.source_key if single else _in_namespace(item.source_key, name, _SOURCE_KEY_MAX),
        "report": item.report.model_copy(update={
            "labels": {**item.report.labels, "am_source": name},
            "dedup_key": item.report.dedup_key if single else _in_namespace(item.report.dedup_key, name, 256)})})
        for item in items]
