"""A published release (schemas/release.py) as a CAP 1.2 <alert>: Pingan as a CAP producer (issue 17).

    release_to_cap(release, *, sender, earlier, ...) -> bytes   (UTF-8, with its XML declaration)

Pure: built with lxml from the release and the incident's earlier published releases, never by string
concatenation. What it writes, where the brief left a choice:
- identifier = release.cap_identifier, sender = the office's stable sender (PINGAN_CAP_SENDER), sent =
  published_at in the district's time zone with its offset and whole seconds (CAP forbids Z and fractions).
- status Actual, or Exercise for an exercise or test incident's release (with a <note> saying 演练 / DRILL);
  msgType Alert, Update, Cancel from ReleaseKind; scope Public; <incidents> the incident id, so that every
  message of one incident is grouped.
- references: the earlier releases given (the incident's earlier ones published on the CAP channel), oldest first,
  as "sender,identifier,sent". An update or all-clear with none (the earlier ones went out by SMS or webhook only)
  is the first this feed's readers hear of the incident, so it is an Alert (an all-clear's with responseType
  AllClear): CAP requires references of an Update or Cancel, and our own intake would refuse one without.
- One <info> in zh-CN and one in en-US (the zh text where the release has no English), each with category, event,
  urgency, severity and certainty from the inverse of the intake mapping (CapMapping.cap_event, cap_grade_terms;
  one table for both directions, cap_terms.py), responseType (Prepare with an instruction, else Monitor;
  AllClear for an all-clear), effective = sent, expires = sent + expires_h (an all-clear expires when sent),
  senderName, headline, description, instruction, web, and parameters naming Pingan's category, subtype, grade
  and warning colour (so another Pingan reads them exactly, and a person sees them).
- An all-clear is a Cancel with responseType AllClear, urgency Past, severity Minor, certainty Observed, as
  Environment Canada and the NTWC send theirs; its category and event stay the incident's.
- <area> for every area of the release: areaDesc (its name, else its geocodes' values), polygons ("lat,lon …"),
  circles ("lat,lon radius_km") and geocodes; an area with neither a name nor a geocode is "区域 n" / "Area n".
"""

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from lxml import etree

from pingan.schemas.adapters.cap_mapping import DEFAULT_MAPPING, CapMapping
from pingan.schemas.adapters.cap_xml import CAP12_NS
from pingan.schemas.areas import AlertArea
from pingan.schemas.common import LocalizedText
from pingan.schemas.release import Release, ReleaseKind

__all__ = ["CAP_MEDIA_TYPE", "cap_time", "release_to_cap", "reference_of", "xml_safe"]

CAP_MEDIA_TYPE = "application/cap+xml"
MSG_TYPES = {ReleaseKind.alert: "Alert", ReleaseKind.update: "Update", ReleaseKind.all_clear: "Cancel"}
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
DRILL_MARK = {"zh": "【演练】", "en": "[DRILL] "}
LANGUAGES = (("zh", "zh-CN"), ("en", "en-US"))
# What XML 1.0 cannot carry at all (C0 controls but tab, newline and return; lone surrogates; U+FFFE, U+FFFF): text
# pasted into a release can hold them, and lxml refuses the whole document, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)


def _number(value: float) -> str:
    """A coordinate or radius as CAP writes it: plain decimal (never 1e-05), to 6 places (about 0.1 m)."""
    out = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if out in ("-0", "") else out


def cap_time(when: datetime, tz: tzinfo = DEFAULT_TZ) -> str:
    """A CAP 1.2 dateTime: whole seconds, an explicit offset (never Z), in the district's zone."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(tz).replace(microsecond=0).isoformat()


def reference_of(release: Release, sender: str, tz: tzinfo = DEFAULT_TZ) -> str:
    """A published release as one CAP reference, "sender,identifier,sent"."""
    if not release.cap_identifier or release.published_at is None:
        raise ValueError(f"release {release.id} is not published: it has no CAP identifier or sent time")
    return f"{sender},{release.cap_identifier},{cap_time(release.published_at, tz)}"


def _sub(parent: etree._Element, name: str, value: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CAP12_NS}}}{name}")
    if value is not None:
        el.text = xml_safe(value)
    return el


def _pair(parent: etree._Element, name: str, key: str, value: str) -> None:
    el = _sub(parent, name)
    _sub(el, "valueName", key)
    _sub(el, "value", value)


def _text(text: LocalizedText | None, lang: str) -> str | None:
    return text.pick(lang) if text is not None else None


def _marked(text: str, lang: str, exercise: bool) -> str:
    if not exercise or "演练" in text or "DRILL" in text.upper():
        return text
    return DRILL_MARK[lang] + text


def _area(info: etree._Element, area: AlertArea, n: int, lang: str) -> None:
    el = _sub(info, "area")
    name = area.name or ", ".join(g.value for g in area.geocodes) or (f"区域 {n}" if lang == "zh" else f"Area {n}")
    _sub(el, "areaDesc", name)
    for ring in area.polygons:
        points = list(ring)
        if len(points) >= 3 and points[0] != points[-1]:
            points.append(points[0])  # CAP polygons are closed
        if len(points) >= 4:
            _sub(el, "polygon", " ".join(f"{_number(lat)},{_number(lon)}" for lat, lon in points))
    for circle in area.circles:
        _sub(el, "circle", f"{_number(circle.lat)},{_number(circle.lon)} {_number(circle.radius_km)}")
    for geocode in area.geocodes:
        _pair(el, "geocode", geocode.name or "geocode", geocode.value)


def release_to_cap(release: Release, *, sender: str, earlier: Iterable[Release],
                   sender_name: LocalizedText | None = None, tz: tzinfo = DEFAULT_TZ, expires_h: float = 24.0,
                   web: str | None = None, mapping: CapMapping = DEFAULT_MAPPING) -> bytes:
    """The CAP 1.2 alert of a published release (see the module docstring); ValueError if it cannot be one."""
    if not release.cap_identifier or release.published_at is None:
        raise ValueError(f"release {release.id} is not published: it has no CAP identifier or published_at")
    sent = cap_time(release.published_at, tz)
    references = [reference_of(r, sender, tz) for r in sorted(
        (r for r in earlier if r.cap_identifier != release.cap_identifier),
        key=lambda r: r.published_at or release.published_at)]
    msg_type = MSG_TYPES[release.kind] if references else "Alert"  # see the module docstring

    exercise = release.is_exercise
    root = etree.Element(f"{{{CAP12_NS}}}alert", nsmap={None: CAP12_NS})
    _sub(root, "identifier", release.cap_identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", sent)
    _sub(root, "status", "Exercise" if exercise else "Actual")
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", "Public")
    if exercise:
        _sub(root, "note", "演练，非真实事件 / DRILL: an exercise, not a real event")
    if references:
        _sub(root, "references", " ".join(references))
    _sub(root, "incidents", release.incident_id)

    texts = release.texts
    hazard = mapping.hazard_in([texts.headline.zh, texts.headline.en or "", texts.description.zh],
                               release.category, release.subtype)
    cap_category, event_zh, event_en = mapping.cap_event(release.category, release.subtype, hazard)
    if release.kind is ReleaseKind.all_clear:
        severity, urgency, certainty = "Minor", "Past", "Observed"
        response, expires = "AllClear", sent
    else:
        severity, urgency, certainty = mapping.cap_grade_terms(release.grade)
        response = "Prepare" if texts.instruction is not None else "Monitor"
        expires = cap_time(release.published_at + timedelta(hours=expires_h), tz)
    # The colour the grade means where the release names none (as the intake gives it; none for social-security and
    # other events).
    colour = release.warning_colour or mapping.colour(release.grade, release.category)
    for lang, language in LANGUAGES:
        info = _sub(root, "info")
        _sub(info, "language", language)
        _sub(info, "category", cap_category)
        _sub(info, "event", event_zh if lang == "zh" else event_en)
        _sub(info, "responseType", response)
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _sub(info, "audience", "公众" if lang == "zh" else "General public")
        _sub(info, "effective", sent)
        _sub(info, "expires", expires)
        if sender_name is not None:
            _sub(info, "senderName", sender_name.pick(lang))
        _sub(info, "headline", _marked(texts.headline.pick(lang), lang, exercise))
        _sub(info, "description", _marked(texts.description.pick(lang), lang, exercise))
        if (instruction := _text(texts.instruction, lang)) is not None:
            _sub(info, "instruction", instruction)
        if web:
            _sub(info, "web", web)
        _pair(info, "parameter", "pingan_category", release.category.value)
        _pair(info, "parameter", "pingan_subtype", release.subtype.value)
        _pair(info, "parameter", "pingan_grade", release.grade.value)
        if colour is not None:
            _pair(info, "parameter", "warning_colour", colour.value)
        for n, area in enumerate(release.areas, start=1):
            _area(info, area, n, lang)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
