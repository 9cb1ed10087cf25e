"""CAP (Common Alerting Protocol, OASIS 1.1 and 1.2) messages to IntakeItems.

    parse_cap(data, mapping=None, source_name="body") -> list[IntakeItem]

One message makes one item. Decisions, where the brief left a choice:
- msgType Alert -> report, Update -> update, Cancel -> close; Ack and Error are rejected (they carry no
  incident). Every message's own key is "cap:{sender}:{identifier}" (IntakeItem.message_key). Update and Cancel
  must have <references>; the item carries the key of every message named there (IntakeItem.references, the
  latest MAX_REFERENCES), and triage applies it to the incident of ANY of them: real services name the latest
  message of a chain, and a chain can be long. Its dedup key is its first reference's (what an incident opened
  before message keys were stored is found by). An Alert's empty <references/> means none.
- Every message of one sender is partitioned by "cap:{sender}" (IntakeItem.partition_key), so a follow-up is
  triaged after the message it names even when that one was sent a moment before.
- status Actual -> actual, Exercise -> exercise, Test and System -> test; Draft is rejected. A message the
  mapping recognises as a test (SAME RMT/RWT/NPT/DMO, "Required Monthly Test"…) is test whatever its status.
- The incident's title and description come from the Chinese <info> (zh, zh-CN, zh-TW…) if there is one, else
  the English one (en, en-US…; an info without <language> is en-US, CAP's default), else the first. Every info
  is kept as an Attachment(kind="cap_info").
- A message without <info> still makes an item: title from <note>, else "CAP {msgType} {identifier}";
  category from mapping.default_target; grade IV. For an update or close the category does not matter: triage
  applies it to the referenced incident.
- Location: the first area of the chosen info (of any info, if it has none): areaDesc -> area_name, the first
  geocode value of at most 32 characters -> area_code, the centroid (mean of the vertices) of the first polygon
  or the centre of the first circle -> lat/lon.
- Areas: every <area> of every info, whole (names, geocodes, polygons, circles), for the district check
  (handlers/incidents/areas.py). A message with more than MAX_ALERT_AREAS areas keeps none: the check then
  counts it as inside, which is the safe side.
- Keys longer than the models allow (dedup_key 256, source_key 300) are replaced by a hash of themselves, the
  same for every message that names them.
"""

import hashlib
import re
from datetime import datetime

from lxml import etree
from pydantic import ValidationError

from pingan.schemas.adapters.cap_mapping import DEFAULT_MAPPING, CapMapping, InfoFacts
from pingan.schemas.adapters.cap_rules import (
    CapValidationError,
    check_alert,
    child,
    children,
    parse_circle,
    parse_polygon,
    parse_references,
    text,
    xsd_problems,
)
from pingan.schemas.adapters.cap_xml import CAP11_NS, CAP12_NS, CAP_NAMESPACES, safe_parse
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.limits import DEFAULT_LIMITS, IntakeLimits, check_cap_limits, checkpoint
from pingan.schemas.areas import MAX_ALERT_AREAS, AlertArea, Circle, Geocode
from pingan.schemas.events import MAX_REFERENCES, IntakeItem, RawKind
from pingan.schemas.incident import Attachment, IncidentReport, Location, Reporter
from pingan.schemas.taxonomy import Grade, IncidentStatus, Source

__all__ = ["CapMapping", "CapValidationError", "cap_dedup_key", "parse_cap"]

KIND_BY_MSGTYPE = {"Alert": RawKind.report, "Update": RawKind.update, "Cancel": RawKind.close}
STATUS_BY_CAP = {"Actual": IncidentStatus.actual, "Exercise": IncidentStatus.exercise,
                 "Test": IncidentStatus.test, "System": IncidentStatus.test}
DEFAULT_LANGUAGE = "en-US"  # CAP: an <info> without <language> is in en-US
MAX_ATTACHMENTS = 50  # IncidentReport's limit
_LABEL_KEY = re.compile(r"[^A-Za-z0-9_.:-]+")


def _bounded_key(key: str, limit: int) -> str:
    return key if len(key) <= limit else "cap:sha256:" + hashlib.sha256(key.encode()).hexdigest()


def cap_dedup_key(sender: str, identifier: str) -> str:
    """The dedup key of the incident a CAP message starts; Updates and Cancels carry their first reference's."""
    return _bounded_key(f"cap:{sender}:{identifier}", 256)


def parse_cap(data: bytes, mapping: CapMapping | None = None, source_name: str = "body",
              limits: IntakeLimits = DEFAULT_LIMITS) -> list[IntakeItem]:
    """A CAP 1.1/1.2 message (its bytes, so its XML declaration decides the encoding) -> IntakeItems.

    Raises IntakeError for anything it will not accept: unsafe or malformed XML, another namespace, a message
    over a count limit (IntakeTooLarge, before any rule is checked), a message that breaks the CAP rules or schema
    (CapValidationError, listing every problem), Draft, Ack, Error.
    """
    root = safe_parse(data, source_name)
    namespace = etree.QName(root).namespace
    if namespace not in CAP_NAMESPACES:
        raise IntakeError(f"namespace {namespace!r} is not CAP; expected {CAP12_NS} or {CAP11_NS}",
                          field="alert", line=root.sourceline, source=source_name)
    if etree.QName(root).localname != "alert":
        raise IntakeError(f"the root element is <{etree.QName(root).localname}>; a CAP message is an <alert>",
                          field="alert", line=root.sourceline, source=source_name)
    check_cap_limits(root, namespace, limits, source_name)
    problems = check_alert(root, namespace, source_name) or xsd_problems(root, namespace, source_name)
    if problems:
        raise CapValidationError.from_problems(problems)
    try:
        return [_to_item(root, namespace, mapping or DEFAULT_MAPPING)]
    except ValidationError as exc:
        # The checks above should leave nothing for the models to refuse; if they do, it is still bad input.
        first = exc.errors()[0]
        raise IntakeError(f"cannot be represented: {first['msg']}", field=".".join(map(str, first["loc"])),
                          source=source_name) from None


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


def _language(info: etree._Element, ns: str) -> str:
    return text(child(info, ns, "language")) or DEFAULT_LANGUAGE


def _ordered_infos(infos: list[etree._Element], ns: str) -> list[etree._Element]:
    """The infos, the one that speaks for the incident first: zh, else en, else document order."""
    def rank(info: etree._Element) -> int:
        lang = _language(info, ns).lower()
        if lang == "zh" or lang.startswith("zh-"):
            return 0
        if lang == "en" or lang.startswith("en-"):
            return 1
        return 2
    return sorted(infos, key=rank)  # stable: document order within a rank


def _pairs(parent: etree._Element, ns: str, name: str) -> list[tuple[str, str]]:
    """(valueName, value) of every <name> child (eventCode, parameter, geocode)."""
    out = []
    for el in children(parent, ns, name):
        key = text(child(el, ns, "valueName"))
        if key:
            out.append((key, text(child(el, ns, "value")) or ""))
    return out


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _to_item(root: etree._Element, ns: str, mapping: CapMapping) -> IntakeItem:
    def header(name: str) -> str | None:
        return text(child(root, ns, name))

    identifier, sender, sent = header("identifier") or "", header("sender") or "", header("sent") or ""
    msg_type, cap_status = header("msgType") or "", header("status") or ""
    infos = _ordered_infos(children(root, ns, "info"), ns)
    primary = infos[0] if infos else None

    facts = [InfoFacts(categories=[text(c) or "" for c in children(i, ns, "category")],
                       event=text(child(i, ns, "event")) or "",
                       event_codes=[v for _, v in _pairs(i, ns, "eventCode")]) for i in infos]
    target = mapping.classify(facts)
    status = STATUS_BY_CAP[cap_status]
    if status is IncidentStatus.actual and any(mapping.is_test_event(f.event, f.event_codes) for f in facts):
        status = IncidentStatus.test

    def info_text(name: str) -> str | None:
        return text(child(primary, ns, name)) if primary is not None else None

    if primary is not None:
        grade = mapping.grade(info_text("severity"), info_text("urgency"), info_text("certainty"))
        title = info_text("headline") or info_text("event") or f"CAP {msg_type} {identifier}"
    else:
        grade = Grade.IV
        title = header("note") or f"CAP {msg_type} {identifier}"

    own_key = cap_dedup_key(sender, identifier)
    dedup_key = own_key
    reference_keys: list[str] = []
    references = header("references")
    if msg_type in ("Update", "Cancel") and references:
        refs = parse_references(references)
        if isinstance(refs, list):  # validated already; the check only narrows the type
            dedup_key = cap_dedup_key(refs[0][0], refs[0][1])
            # Every one, in order, once; the latest are the ones that matter if a chain is very long.
            reference_keys = list(dict.fromkeys(cap_dedup_key(s, i) for s, i, _ in refs))[-MAX_REFERENCES:]

    sender_name = info_text("senderName")
    report = IncidentReport(
        source=Source.cap,
        status=status,
        category=target.category,
        subtype=target.subtype,
        hazard=target.hazard,
        grade=grade,
        warning_colour=mapping.colour(grade, target.category),
        title=_clip(title, 500),
        description=_clip(info_text("description") or "", 20_000),
        location=_location(infos, ns),
        areas=_areas(infos, ns),
        reporter=Reporter(organisation=_clip(sender_name or sender, 200)),
        occurred_at=_time(info_text("onset") or info_text("effective") or sent),
        dedup_key=dedup_key,
        labels=_labels(root, ns, primary, mapping, version=CAP_NAMESPACES[ns]),
        attachments=[_attachment(i, ns) for i in children(root, ns, "info")[:MAX_ATTACHMENTS]],
    )
    return IntakeItem(kind=KIND_BY_MSGTYPE[msg_type], report=report,
                      source_key=_bounded_key(f"cap:{sender}:{identifier}:{sent}", 300),
                      message_key=own_key, references=reference_keys,
                      partition_key=_bounded_key(f"cap:{sender}", 300))


def _location(infos: list[etree._Element], ns: str) -> Location:
    areas = [a for i in infos for a in children(i, ns, "area")]
    if not areas:
        return Location()
    area_code = next((v for a in areas for _, v in _pairs(a, ns, "geocode") if v and len(v) <= 32), None)
    lat = lon = None
    for area in areas:
        for polygon in children(area, ns, "polygon"):
            points = parse_polygon(polygon.text or "") if text(polygon) else None
            if isinstance(points, list):
                ring = points[:-1]  # the last vertex repeats the first
                lat, lon = sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)
                break
        if lat is None:
            for circle in children(area, ns, "circle"):
                parsed = parse_circle(circle.text or "") if text(circle) else None
                if isinstance(parsed, tuple):
                    lat, lon = parsed[0], parsed[1]
                    break
        if lat is not None:
            break
    return Location(area_code=area_code, area_name=_clip(text(child(areas[0], ns, "areaDesc")), 200),
                    lat=lat, lon=lon)


def _areas(infos: list[etree._Element], ns: str) -> list[AlertArea]:
    """Every <area> of every info, whole. Malformed shapes were refused by the checks; empty ones are absent."""
    out: list[AlertArea] = []
    for area in (a for i in infos for a in children(i, ns, "area")):
        checkpoint()
        polygons = [p for p in (parse_polygon(el.text or "") for el in children(area, ns, "polygon") if text(el))
                    if isinstance(p, list)]
        circles = [Circle(lat=c[0], lon=c[1], radius_km=min(c[2], 20_100))
                   for c in (parse_circle(el.text or "") for el in children(area, ns, "circle") if text(el))
                   if isinstance(c, tuple)]
        geocodes = [Geocode(name=k[:100], value=v[:100]) for k, v in _pairs(area, ns, "geocode") if v]
        found = AlertArea(name=_clip(text(child(area, ns, "areaDesc")), 2000), geocodes=geocodes[:2000],
                          polygons=polygons[:500], circles=circles[:500])
        if not found.is_empty():
            out.append(found)
    # Too many to keep: none, which the district check counts as inside (never a silent "outside").
    return out if len(out) <= MAX_ALERT_AREAS else []


def _labels(root: etree._Element, ns: str, primary: etree._Element | None, mapping: CapMapping,
            version: str) -> dict[str, str]:
    labels = {
        "cap_identifier": text(child(root, ns, "identifier")) or "",
        "cap_sender": text(child(root, ns, "sender")) or "",
        "cap_sent": text(child(root, ns, "sent")) or "",
        "cap_msgtype": text(child(root, ns, "msgType")) or "",
        "cap_status": text(child(root, ns, "status")) or "",
        "cap_scope": text(child(root, ns, "scope")) or "",
        "cap_version": version,
    }
    for optional in ("references", "incidents"):
        if value := text(child(root, ns, optional)):
            labels[f"cap_{optional}"] = _clip(value, 1000) or ""
    if primary is None:
        return labels
    labels["cap_language"] = _language(primary, ns)
    added = 0
    for name, value in _pairs(primary, ns, "parameter"):
        key = _LABEL_KEY.sub("_", name).strip("_")[:64]
        if not key or not value or key.startswith("cap_"):
            continue  # the cap_* labels above are ours; a parameter never overwrites them
        if key in labels:
            # A repeated parameter (NWS predictedArrivalTime, IPAWS BLOCKCHANNEL) keeps every value.
            labels[key] = _clip(f"{labels[key]}; {value}", 1000) or ""
        elif added < mapping.max_parameter_labels:
            labels[key] = _clip(value, 1000) or ""
            added += 1
    return labels


def _attachment(info: etree._Element, ns: str) -> Attachment:
    def t(name: str) -> str | None:
        return text(child(info, ns, name))

    checkpoint()
    areas = children(info, ns, "area")
    data: dict[str, object] = {
        "event": t("event"),
        "category": [text(c) for c in children(info, ns, "category")],
        "responseType": [text(r) for r in children(info, ns, "responseType")],
        "urgency": t("urgency"),
        "severity": t("severity"),
        "certainty": t("certainty"),
        "audience": t("audience"),
        "eventCode": [{"valueName": k, "value": v} for k, v in _pairs(info, ns, "eventCode")[:20]],
        "effective": t("effective"),
        "onset": t("onset"),
        "expires": t("expires"),
        "senderName": t("senderName"),
        "instruction": _clip(t("instruction"), 5000),
        "contact": t("contact"),
        "areaDesc": _clip("; ".join(filter(None, (text(child(a, ns, "areaDesc")) for a in areas))), 2000),
        "geocode": [{"valueName": k, "value": v} for a in areas for k, v in _pairs(a, ns, "geocode")][:50],
        "parameter": [{"valueName": k, "value": _clip(v, 1000)} for k, v in _pairs(info, ns, "parameter")[:50]],
        # Resources without derefUri: an embedded base64 audio file or image does not belong in an incident.
        "resource": [{"resourceDesc": text(child(r, ns, "resourceDesc")), "mimeType": text(child(r, ns, "mimeType")),
                      "uri": text(child(r, ns, "uri"))} for r in children(info, ns, "resource")[:20]],
    }
    return Attachment(
        kind="cap_info",
        lang=_clip(_language(info, ns), 35),
        title=_clip(t("headline") or t("event"), 500),
        text=_clip(t("description"), 20_000),
        url=_clip(t("web"), 2000),
        data={k: v for k, v in data.items() if v not in (None, [], "")},
    )
