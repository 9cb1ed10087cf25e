"""Public SMS subscriptions by keyword (issue 17): `订阅 唐家湾` / `SUB Tangjiawan` subscribes the sender's number to
an area of the district; `退订`, `TD`, `STOP`, `UNSUB`, `取消订阅` (and Twilio's other opt-out words) unsubscribe
it from every area, always, whoever sends them. Pure: the text and the district in, a decision and the reply out.

The web layer (web/twilio_intake.py) asks `parse_keyword` before a text is taken as a citizen's report, the store
(store/subscriptions.py) keeps every change, and handlers/incidents/broadcast.py decides who a release reaches.
"""

import re
from dataclasses import dataclass
from typing import Literal

from pingan.schemas.areas import District, DistrictArea

Lang = Literal["zh", "en"]
ALL_AREAS = "*"  # the area code of an unsubscription from everything

# Whole-text words that end every subscription. STOP … OPTOUT are also Twilio's own opt-out words: Twilio answers
# them and blocks further messages to the sender by itself (so our reply to them is empty, see web/twilio_intake.py).
TWILIO_OPT_OUT = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
UNSUBSCRIBE_WORDS = frozenset({"退订", "td", "unsub", "取消订阅", *TWILIO_OPT_OUT})
# 退订 / 取消订阅 may also start a longer text (`退订 唐家湾`): it still ends every subscription, the safe reading.
# TD / UNSUB do so only before a few characters (an area's name): "TD Bank is on fire" is a report.
_UNSUBSCRIBE_PREFIX = re.compile(r"^(td|unsub)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_UNSUBSCRIBE_PREFIX_CJK = re.compile(r"^(取消订阅|退订)")
_SUBSCRIBE = re.compile(r"^(?:(?:订阅)\s*|(?:sub|subscribe)(?:\s+|$))(.*)$", re.IGNORECASE | re.DOTALL)
# What may follow 订阅 / SUB / TD: an area's name, not a sentence. A longer text, or 订阅号 (a WeChat official
# account: "订阅号说唐家湾停水"), is a citizen's report and goes on to triage.
AREA_QUERY_MAX = 20
_TRIM = " \t\r\n\u3000。.!！,，;；:："
KNOWN_SHOWN = 8  # area names listed in the reply to an unknown area


@dataclass(frozen=True)
class Keyword:
    """A subscription command: `subscribe` with the area asked for (may be empty), or `unsubscribe`."""

    action: Literal["subscribe", "unsubscribe"]
    area_query: str = ""
    twilio_opt_out: bool = False  # one of Twilio's own words: Twilio has answered the sender already
    latin: bool = False  # SUB / SUBSCRIBE: English, where "Sub station exploded" is a report


def _clean(body: str) -> str:
    return " ".join(body.replace("\u3000", " ").split()).strip(_TRIM)


def parse_keyword(body: str) -> Keyword | None:
    """The subscription command a text is, or None (then it is a report or a duty command)."""
    text = _clean(body)
    folded = text.casefold()
    if folded in UNSUBSCRIBE_WORDS:
        return Keyword("unsubscribe", twilio_opt_out=folded in TWILIO_OPT_OUT)
    if _UNSUBSCRIBE_PREFIX_CJK.match(text):
        return Keyword("unsubscribe")
    latin = _UNSUBSCRIBE_PREFIX.match(text)
    if latin and len(_clean(latin.group(2))) <= AREA_QUERY_MAX:
        return Keyword("unsubscribe")
    found = _SUBSCRIBE.match(text)
    if found and not text.startswith("订阅号") and len(query := _clean(found.group(1))) <= AREA_QUERY_MAX:
        return Keyword("subscribe", query, latin=not text.startswith("订阅"))
    return None


def is_subscription(district: District, keyword: Keyword) -> bool:
    """Whether a parsed keyword is one: an English SUB before several words that name no area ("Sub station
    exploded at Jishan") is a report. 订阅, a single word (SUB Beijing: answered with the areas one may choose) and
    every unsubscription are."""
    if keyword.action != "subscribe" or not keyword.latin or " " not in keyword.area_query:
        return True
    return find_area(district, keyword.area_query) is not None


def _fold(name: str) -> str:
    return " ".join(name.casefold().replace("\u2019", "'").replace("\u2018", "'").split())


def find_area(district: District, query: str) -> DistrictArea | None:
    """The district area a subscriber names: its code, Chinese or English name or an alias (case, spaces and
    apostrophes forgiven), or a name with 镇 / 社区 / 村 / 街道 added or left off."""
    wanted = _fold(query)
    if not wanted:
        return None
    variants = {wanted}
    for suffix in ("社区", "街道", "镇", "村", " community", " town"):
        if wanted.endswith(suffix):
            variants.add(wanted[: -len(suffix)].strip())
    for area in district.areas:
        names = {_fold(n) for n in area.names()} | {area.code}
        if variants & names:
            return area
    return None


def area_label(area: DistrictArea, lang: Lang) -> str:
    if lang == "en":
        return area.name_en or area.name_zh or area.code
    return area.name_zh or area.name_en or area.code


def known_names(district: District, lang: Lang, limit: int = KNOWN_SHOWN) -> list[str]:
    """Some areas one may subscribe to, the widest first (a town before its communities)."""
    depth = {a.code: _depth(district, a) for a in district.areas}
    ordered = sorted(district.areas, key=lambda a: (depth[a.code], a.code))
    return [area_label(a, lang) for a in ordered[:limit]]


def _depth(district: District, area: DistrictArea) -> int:
    by_code = {a.code: a for a in district.areas}
    depth, seen, parent = 0, {area.code}, area.parent
    while parent in by_code and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = by_code[parent].parent
    return depth


REPLIES: dict[str, dict[Lang, str]] = {
    "subscribed": {
        "zh": "【平安】已订阅{area}的预警和信息发布短信。回复“退订”或 TD 取消。",
        "en": "[Pingan] Subscribed to public warnings for {area}. Reply STOP or UNSUB to unsubscribe.",
    },
    "unknown": {
        "zh": "【平安】没有找到地区“{query}”。可订阅：{known}等。例如发送“订阅 唐家湾”。",
        "en": "[Pingan] No area called \"{query}\". You can subscribe to {known} and more, e.g. text "
              "\"SUB Tangjiawan\".",
    },
    "usage": {
        "zh": "【平安】请发送“订阅 地区名”订阅预警短信，可订阅：{known}等。",
        "en": "[Pingan] Text SUB and an area name to subscribe to public warnings, e.g. {known}.",
    },
    "unsubscribed": {
        "zh": "【平安】已退订全部预警短信，不会再发送。如需重新订阅，请发送“订阅 地区名”。",
        "en": "[Pingan] You are unsubscribed from all warning messages and will get no more. "
              "To subscribe again, text SUB and an area name.",
    },
}


def reply_text(kind: str, lang: Lang, **values: str) -> str:
    return REPLIES[kind][lang].format(**values)


def subscribe_reply(district: District, keyword: Keyword, lang: Lang) -> tuple[DistrictArea | None, str]:
    """The area a `subscribe` names (None if it names none we know), and what to answer."""
    sep = "、" if lang == "zh" else ", "
    known = sep.join(known_names(district, lang))
    if not keyword.area_query:
        return None, reply_text("usage", lang, known=known)
    area = find_area(district, keyword.area_query)
    if area is None:
        return None, reply_text("unknown", lang, query=keyword.area_query[:40], known=known)
    return area, reply_text("subscribed", lang, area=area_label(area, lang))
