"""What one intake message may hold, and how much CPU parsing it may take.

A body within the byte limit can still hold 50,000 empty CAP <info/> or 10,000 one-label alerts, and the Python
checks after the parser cost per element: a message over a count limit is refused as soon as the parser (lxml,
json) has read it, before any of that. The limits are settings (core/settings.py); the refusal names the limit and
the setting that raises it, so a sender with a real need knows what to ask for.

The CPU budget covers what the count limits cannot foresee: the caller runs a parse inside `cpu_budget(...)` and
the adapters' loops call `checkpoint()`, which raises once the thread has used more CPU than the budget. It is
cooperative (a C call such as the XSD validation is not interrupted), so it bounds the Python loops, which is where
the time went; the count limits bound the C calls.
"""

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from lxml import etree

from pingan.schemas.adapters.errors import IntakeError

# The environment variable of each limit, named in every refusal.
SETTINGS = {
    "cap_max_infos": "PINGAN_CAP_MAX_INFOS",
    "cap_max_areas_per_info": "PINGAN_CAP_MAX_AREAS_PER_INFO",
    "cap_max_polygon_points": "PINGAN_CAP_MAX_POLYGON_POINTS",
    "alertmanager_max_alerts": "PINGAN_ALERTMANAGER_MAX_ALERTS",
}
BUDGET_SETTING = "PINGAN_INTAKE_PARSE_CPU_BUDGET_S"


@dataclass(frozen=True)
class IntakeLimits:
    """Defaults far above any real message (the OASIS, NWS, IPAWS and Environment Canada samples carry at most 2
    infos and 4 areas; NWS polygons a few hundred points) and far below what stalls a parser."""

    cap_max_infos: int = 100
    cap_max_areas_per_info: int = 500
    cap_max_polygon_points: int = 10_000
    alertmanager_max_alerts: int = 1000


DEFAULT_LIMITS = IntakeLimits()


@dataclass
class IntakeTooLarge(IntakeError):
    """A message over a limit (answered 413): which limit, how many it held, and the setting that raises it."""

    limit: float = 0
    count: float | None = None
    setting: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "limit": self.limit, "count": self.count, "setting": self.setting}


def _over(what: str, name: str, count: int, limit: int, field: str, line: int | None, source: str) -> IntakeTooLarge:
    setting = SETTINGS[name]
    return IntakeTooLarge(f"{what}: {count}, over the limit of {limit} ({setting})", field=field, line=line,
                          source=source, limit=limit, count=count, setting=setting)


def check_cap_limits(root: etree._Element, ns: str, limits: IntakeLimits, source: str = "body") -> None:
    """Refuse a CAP <alert> over a count limit; one pass over the tree in C, before any per-element Python check."""
    info_tag, area_tag = f"{{{ns}}}info", f"{{{ns}}}area"
    infos = sum(1 for _ in root.iterchildren(info_tag))
    if infos > limits.cap_max_infos:
        raise _over("too many <info> blocks", "cap_max_infos", infos, limits.cap_max_infos, "alert.info",
                    root.sourceline, source)
    for i, info in enumerate(root.iterchildren(info_tag)):
        areas = sum(1 for _ in info.iterchildren(area_tag))
        if areas > limits.cap_max_areas_per_info:
            raise _over("too many <area> blocks in one <info>", "cap_max_areas_per_info", areas,
                        limits.cap_max_areas_per_info, f"alert.info[{i}].area", info.sourceline, source)
    for polygon in root.iter(f"{{{ns}}}polygon"):
        # One comma per "lat,lon" pair: counted in C, without splitting a long polygon into strings.
        points = (polygon.text or "").count(",")
        if points > limits.cap_max_polygon_points:
            raise _over("too many points in a <polygon>", "cap_max_polygon_points", points,
                        limits.cap_max_polygon_points, "alert.info.area.polygon", polygon.sourceline, source)


def check_alert_count(raw: object, limits: IntakeLimits, source: str = "body") -> None:
    """Refuse an Alertmanager webhook with more alerts than the limit, before pydantic reads any of them."""
    alerts = raw.get("alerts") if isinstance(raw, dict) else None
    if isinstance(alerts, list) and len(alerts) > limits.alertmanager_max_alerts:
        error = _over("too many alerts in one webhook", "alertmanager_max_alerts", len(alerts),
                      limits.alertmanager_max_alerts, "alerts", None, source)
        error.message += "; set max_alerts in the receiver's webhook_config to stay under it"
        raise error


MAX_JSON_DEPTH = 32  # an Alertmanager webhook is 4 deep (notification, alerts, alert, labels); 32 leaves room
# A JSON string (escapes included) or one bracket: brackets inside strings are skipped with the string.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def check_json_depth(data: bytes, source: str = "body", limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` before it is parsed: json.loads recurses once a level, so 1,000 levels
    of `[` raised RecursionError (a 500) in the parser, and pydantic would recurse again. The scan is one regex
    pass in C over strings and brackets; malformed JSON is left to the parser to describe."""
    depth = 0
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                line = data.count(b"\n", 0, match.start()) + 1
                raise IntakeError(f"JSON nested more than {limit} levels deep", field="body", line=line,
                                  source=source)
        elif token in (b"]", b"}"):
            depth -= 1


# ---- the CPU budget of one parse ------------------------------------------------------------------------------

_local = threading.local()


@contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """Run the block under a budget of `seconds` of this thread's CPU time; `checkpoint()` enforces it."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = (time.thread_time() + seconds, seconds)
    try:
        yield
    finally:
        _local.deadline = previous


def checkpoint() -> None:
    """Raise IntakeTooLarge once this thread has used up its parse budget; nothing outside a `cpu_budget` block."""
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.thread_time() > deadline[0]:
        seconds = deadline[1]
        raise IntakeTooLarge(f"reading this message took more than {seconds:g} s of CPU ({BUDGET_SETTING}); send "
                             "smaller messages", field="body", limit=seconds, setting=BUDGET_SETTING)
