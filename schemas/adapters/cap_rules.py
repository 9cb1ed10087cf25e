"""CAP validation: the rules of the CAP 1.2 specification that its XSD cannot express, then the XSD itself.

Every problem is an IntakeError with a field path such as "alert.info[0].area[0].polygon[1]", the line (and
column where lxml knows it) and the source name. All problems of a message are reported together, in document
order, so a sender can fix them in one go: the raised CapValidationError is the first one, listing the others.

The code checks run first because they say what is wrong in CAP's terms ("required element <scope> is
missing") where the XSD would say "element info: this element is not expected"; only a message that passes
them is validated against the schema, which then catches what they do not look at (element order, date
formats, unknown elements).

Lenient where real feeds are, and the specification does not make a message meaningless:
- an empty <polygon/> or <circle/> is treated as absent (NWS CAP 1.1 feeds emit them routinely);
- an empty <restriction/>, <addresses/> or <note/> is treated as absent (Environment Canada sends them);
- <addresses> with scope Public is accepted (USGS sends <addresses>0</addresses>);
- an empty <references/> on an Alert is treated as absent (it is XSD-valid, and an Alert needs none); an Update
  or Cancel must still name what it changes.

Times (<sent>, <effective>, <onset>, <expires>) are checked here too, so that a time the XSD would refuse with its
raw pattern is explained in words: "CAP times need an offset such as +08:00, not Z".
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from pingan.schemas.adapters.cap_xml import xsd_errors
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.limits import checkpoint

MAX_PROBLEMS = 50

# Elements that may repeat: their field paths carry an index.
REPEATABLE = frozenset({"info", "area", "polygon", "circle", "geocode", "parameter", "eventCode", "resource",
                        "category", "responseType", "code"})

ENUMS: dict[str, tuple[str, ...]] = {
    "status": ("Actual", "Exercise", "System", "Test", "Draft"),
    "msgType": ("Alert", "Update", "Cancel", "Ack", "Error"),
    "scope": ("Public", "Restricted", "Private"),
    "category": ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                 "CBRNE", "Other"),
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": ("Extreme", "Severe", "Moderate", "Minor", "Unknown"),
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
}
HEADER_REQUIRED = ("identifier", "sender", "sent", "status", "msgType", "scope")
INFO_REQUIRED = ("event", "urgency", "severity", "certainty")

# CAP 1.2's dateTime restriction: whole seconds and an explicit offset, never Z.
_CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")
TIME_ELEMENTS = ("effective", "onset", "expires")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_RESTRICTED = re.compile(r"[\s,<&]")


@dataclass
class CapValidationError(IntakeError):
    """The first problem of an invalid CAP message, with every problem (the first included) in `problems`."""

    problems: list[IntakeError] = field(default_factory=list)

    @classmethod
    def from_problems(cls, problems: list[IntakeError]) -> "CapValidationError":
        first = problems[0]
        message = first.message
        if len(problems) > 1:
            shown = [f"{p.field or '?'}" + (f" (line {p.line})" if p.line else "") for p in problems[1:6]]
            rest = f", {len(problems) - 6} more" if len(problems) > 6 else ""
            message += f" [and {len(problems) - 1} more problem(s): {', '.join(shown)}{rest}]"
        return cls(message, first.field, first.line, first.col, first.source, problems=list(problems))

    def as_dict(self) -> dict[str, object]:
        result = super().as_dict()
        result["problems"] = [p.as_dict() for p in self.problems]
        return result


def child(el: etree._Element, ns: str, name: str) -> etree._Element | None:
    return el.find(f"{{{ns}}}{name}")


def children(el: etree._Element, ns: str, name: str) -> list[etree._Element]:
    return el.findall(f"{{{ns}}}{name}")


def text(el: etree._Element | None) -> str | None:
    """The element's stripped text; None when the element is absent or empty."""
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return value or None


class FieldPaths:
    """Field paths such as "alert.info[3].area[0]", with each parent's children numbered once.

    Counting an element's preceding siblings on every call made a message of n <info> cost n² (50,000 empty infos
    stalled the API for minutes); here the first lookup under a parent numbers all its children, and the rest are
    dictionary hits. lxml keeps one proxy per node while it is referenced, so the elements are stable keys."""

    def __init__(self) -> None:
        self._index: dict[etree._Element, int] = {}

    def __call__(self, el: etree._Element) -> str:
        parts: list[str] = []
        node: etree._Element | None = el
        while node is not None:
            name = etree.QName(node).localname
            if name in REPEATABLE:
                name = f"{name}[{self._position(node)}]"
            parts.append(name)
            node = node.getparent()
        return ".".join(reversed(parts))

    def _position(self, node: etree._Element) -> int:
        found = self._index.get(node)
        if found is None:
            parent = node.getparent()
            if parent is None:
                return 0
            seen: dict[object, int] = {}
            for sibling in parent:
                self._index[sibling] = seen.get(sibling.tag, 0)
                seen[sibling.tag] = self._index[sibling] + 1
            found = self._index[node]
        return found


def field_path(el: etree._Element, paths: FieldPaths | None = None) -> str:
    """One element's field path; pass one FieldPaths for all the paths of a document."""
    return (paths or FieldPaths())(el)


def parse_point(pair: str) -> tuple[float, float] | str:
    """(lat, lon) from "lat,lon", or what is wrong with it."""
    parts = pair.split(",")
    if len(parts) != 2 or not all(_NUMBER.fullmatch(p) for p in parts):
        return f"coordinate pair {pair!r} is not 'lat,lon' in decimal degrees"
    lat, lon = float(parts[0]), float(parts[1])
    if not -90 <= lat <= 90:
        return f"latitude {parts[0]} in {pair!r} is out of range -90..90"
    if not -180 <= lon <= 180:
        return f"longitude {parts[1]} in {pair!r} is out of range -180..180"
    return lat, lon


def parse_polygon(value: str) -> list[tuple[float, float]] | str:
    """The points of a CAP polygon ("lat,lon lat,lon …", closed, at least 4 pairs), or what is wrong with it."""
    pairs = value.split()
    points: list[tuple[float, float]] = []
    for pair in pairs:
        point = parse_point(pair)
        if isinstance(point, str):
            return point
        points.append(point)
    if len(points) < 4:
        return f"a polygon needs at least 4 coordinate pairs, the last repeating the first; it has {len(points)}"
    if points[0] != points[-1]:
        return f"a polygon must be closed: its first pair {pairs[0]!r} differs from its last {pairs[-1]!r}"
    return points


def parse_circle(value: str) -> tuple[float, float, float] | str:
    """(lat, lon, radius_km) from "lat,lon radius", or what is wrong with it."""
    parts = value.split()
    if len(parts) != 2:
        return f"circle {value!r} is not 'lat,lon radius'"
    point = parse_point(parts[0])
    if isinstance(point, str):
        return point
    if not _NUMBER.fullmatch(parts[1]) or float(parts[1]) < 0:
        return f"circle radius {parts[1]!r} is not a non-negative number of kilometres"
    return point[0], point[1], float(parts[1])


def time_problem(value: str) -> str | None:
    """What is wrong with a CAP time, in words, or None when it is right."""
    if _CAP_TIME.fullmatch(value):
        return None
    example = "2026-08-01T08:00:00+08:00"
    if value.endswith(("Z", "z")):
        fixed = value[:-1].split(".")[0] + "+00:00"
        return f"CAP times need an offset such as +08:00, not Z: {value!r} is written {fixed!r} in CAP"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+([-+]\d\d:\d\d)?", value):
        return f"CAP times have whole seconds: {value!r} has a fraction; write it like {example}"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        return f"CAP times need an offset such as +08:00: {value!r} has none; write it like {example}"
    return f"{value!r} is not a CAP time; write it like {example} (whole seconds and an offset such as +08:00)"


def parse_references(value: str) -> list[tuple[str, str, str]] | str:
    """[(sender, identifier, sent)] from CAP <references>, or what is wrong with it."""
    refs: list[tuple[str, str, str]] = []
    for token in value.split():
        parts = token.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            return f"reference {token!r} is not 'sender,identifier,sent'"
        try:
            sent = datetime.fromisoformat(parts[2])
        except ValueError:
            return f"reference {token!r}: {parts[2]!r} is not a date-time such as 2003-06-17T14:57:00-07:00"
        if sent.tzinfo is None:
            return f"reference {token!r}: the sent time {parts[2]!r} has no time zone offset"
        refs.append((parts[0], parts[1], parts[2]))
    if not refs:
        return "references is empty; it must list the earlier messages as 'sender,identifier,sent', space-separated"
    return refs


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[IntakeError] = []
        self.path = FieldPaths()

    def add(self, message: str, where: str | etree._Element, el: etree._Element | None, suffix: str = "") -> None:
        """Note a problem at a field path, or at an element's path plus `suffix`: built only for a problem that is
        kept (a message of 50,000 bad infos has 250,000 problems, and MAX_PROBLEMS are reported)."""
        if len(self.items) < MAX_PROBLEMS:
            name = where if isinstance(where, str) else self.path(where) + suffix
            self.items.append(IntakeError(message, name, el.sourceline if el is not None else None, None,
                                          self.source))

    def required(self, parent: etree._Element, ns: str, name: str) -> str | None:
        """The value of a required, single element, noting the problem when it is missing, empty or not allowed."""
        el = child(parent, ns, name)
        if el is None:
            self.add(f"required element <{name}> is missing", parent, parent, f".{name}")
            return None
        value = text(el)
        if value is None:
            self.add(f"<{name}> must not be empty", parent, el, f".{name}")
            return None
        if name in ENUMS and value not in ENUMS[name]:
            self.add(f"<{name}> {value!r} is not one of {', '.join(ENUMS[name])}", parent, el, f".{name}")
            return None
        return value


def check_alert(root: etree._Element, ns: str, source: str) -> list[IntakeError]:
    """Every rule-level problem of a CAP <alert>, in document order; [] if none."""
    p = _Problems(source)
    values = {name: p.required(root, ns, name) for name in HEADER_REQUIRED}
    for name in ("identifier", "sender"):
        if values[name] and _RESTRICTED.search(values[name]):
            p.add(f"<{name}> must not contain spaces, commas, '<' or '&' (references could not name it)",
                  f"alert.{name}", child(root, ns, name))
    if values["status"] == "Draft":
        p.add("status Draft: drafts are not acted on; send Actual, Exercise, System or Test", "alert.status",
              child(root, ns, "status"))
    if values["msgType"] in ("Ack", "Error"):
        p.add(f"msgType {values['msgType']}: acknowledgements and error reports carry no incident; Pingan takes "
              "Alert, Update and Cancel", "alert.msgType", child(root, ns, "msgType"))
    if values["scope"] == "Restricted" and not text(child(root, ns, "restriction")):
        p.add("scope Restricted needs a non-empty <restriction> saying who may see it", "alert.restriction",
              child(root, ns, "scope"))
    if values["scope"] == "Private" and not text(child(root, ns, "addresses")):
        p.add("scope Private needs a non-empty <addresses> listing the recipients", "alert.addresses",
              child(root, ns, "scope"))
    if values["sent"] and (problem := time_problem(values["sent"])):
        p.add(problem, "alert.sent", child(root, ns, "sent"))
    references = child(root, ns, "references")
    if references is not None and (text(references) or values["msgType"] in ("Update", "Cancel")):
        parsed = parse_references(references.text or "")
        if isinstance(parsed, str):
            p.add(parsed, "alert.references", references)
    elif values["msgType"] in ("Update", "Cancel"):
        p.add(f"msgType {values['msgType']} needs <references> naming the message it changes", "alert.references",
              child(root, ns, "msgType"))
    for info in children(root, ns, "info"):
        checkpoint()  # the parse's CPU budget (limits.py), once per info, area and shape
        _check_info(p, info, ns)
    return sorted(p.items, key=lambda e: e.line if e.line is not None else 1 << 30)


def _check_info(p: _Problems, info: etree._Element, ns: str) -> None:
    categories = children(info, ns, "category")
    if not categories:
        p.add("required element <category> is missing", info, info, ".category")
    for category in categories:
        value = text(category)
        if value not in ENUMS["category"]:
            p.add(f"<category> {value or ''!r} is not one of {', '.join(ENUMS['category'])}", category, category)
    for name in INFO_REQUIRED:
        p.required(info, ns, name)
    for name in TIME_ELEMENTS:
        el = child(info, ns, name)
        if (value := text(el)) and (problem := time_problem(value)):
            p.add(problem, info, el, f".{name}")
    for area in children(info, ns, "area"):
        checkpoint()
        p.required(area, ns, "areaDesc")
        for polygon in children(area, ns, "polygon"):
            checkpoint()
            if text(polygon) and isinstance(problem := parse_polygon(polygon.text or ""), str):
                p.add(problem, polygon, polygon)
        for circle in children(area, ns, "circle"):
            if text(circle) and isinstance(problem := parse_circle(circle.text or ""), str):
                p.add(problem, circle, circle)


def xsd_problems(root: etree._Element, ns: str, source: str) -> list[IntakeError]:
    """The schema's complaints as IntakeErrors, each with the field path of the element it is about."""
    problems: list[IntakeError] = []
    tree = root.getroottree()
    paths = FieldPaths()
    for line, col, path, message in xsd_errors(root, ns)[:MAX_PROBLEMS]:
        where = "alert"
        try:
            # lxml reports paths like /ns0:alert/ns0:info/ns0:urgency or /*/*[6]; any prefix means CAP here.
            prefixes = {prefix: ns for prefix in re.findall(r"([A-Za-z_][\w.-]*):", path)}
            found = tree.xpath(path, namespaces=prefixes) if path else []
            if isinstance(found, list) and found and isinstance(found[0], etree._Element):
                where = paths(found[0])
        except etree.XPathError:
            pass
        problems.append(IntakeError(message.replace(f"{{{ns}}}", ""), where, line, col, source))
    return problems
