"""Counted facts in a citizen's text: how many dead, injured, trapped or missing, and the grade they hint at.

The counts become the report's labels (deaths, injured, trapped, missing, casualties), which the plans' grade rules
(casualties_gte) and the incident's merged facts (handlers/incidents/correlation.py) read. A vague count is its
lower bound: 有人 (someone) is 1, 好多 or several is 2, 十几 is 11, 几十 is 20. Citizens' figures are unverified,
so they only hint at a grade; the report itself still comes in at grade IV for the duty room to regrade.
"""

import re
from collections.abc import Iterable

from pingan.schemas.taxonomy import Grade

FACTS = ("deaths", "injured", "trapped", "missing")
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "几": 2}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_VAGUE = ("好多", "很多", "好几", "成班", "一班", "大量", "多")
_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
               "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "dozen": 12, "dozens": 24, "several": 2,
               "many": 2, "some": 2, "few": 2, "multiple": 2, "people": 2}
_NUM_ZH = r"[0-9]+|[零〇一二两三四五六七八九十百千几]+|" + "|".join(_VAGUE)
_NUM_EN = r"[0-9]+|" + "|".join(_EN_NUMBERS)
_UNIT = r"(?:个|名|位|人|条人命)"
_NEGATION = re.compile(r"(没|冇|无|未|不|唔|no\s|not\s|nobody|no one|none)")

# Grade hints by the national grading of sudden events (突发事件分级), deaths or injured at least:
# 3 dead or 10 injured is 较大 (III), 10 or 50 重大 (II), 30 or 100 特别重大 (I).
_HINTS = ((Grade.I, 30, 100), (Grade.II, 10, 50), (Grade.III, 3, 10))


def zh_number(text: str) -> int:
    """A Chinese or Arabic numeral, or a vague amount, as its lower bound."""
    if text.isdigit():
        return int(text)
    if text in _VAGUE:
        return 2
    total, current, after_unit = 0, None, False
    for ch in text:
        if ch in _ZH_UNITS:
            total += (current if current is not None else 1) * _ZH_UNITS[ch]
            current, after_unit = None, True
        else:
            # 几 after a unit is "and some": 十几 is at least 11, while 几十 is at least 20.
            current = 1 if ch == "几" and after_unit else _ZH_DIGITS.get(ch, 0)
    return total + (current or 0)


def _words(terms: Iterable[str]) -> str:
    return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))


def _negated(text: str, at: int) -> bool:
    return bool(_NEGATION.search(text[max(0, at - 4):at]))


def count_facts(text: str, words: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """The largest count of each fact said in `text` (lower-cased, simplified); facts not said are absent."""
    found: dict[str, int] = {}

    def note(fact: str, n: int, at: int) -> None:
        if n > 0 and not _negated(text, at):
            found[fact] = max(found.get(fact, 0), n)

    for fact in FACTS:
        zh = _words(t for t in words.get(fact, ()) if not t.isascii())
        en = _words(t for t in words.get(fact, ()) if t.isascii())
        if zh:
            # 3人死亡, 两个后生仔受伤: a count with its measure word, then up to four characters, then the word.
            for m in re.finditer(rf"({_NUM_ZH}){_UNIT}[\u4e00-\u9fff]{{0,4}}?(?:{zh})", text):
                note(fact, zh_number(m.group(1)), m.start())
            # 死咗一个, 死亡3人, 送了十几个: the word, then the count.
            for m in re.finditer(rf"(?:{zh})(?:了|咗)?({_NUM_ZH}){_UNIT}", text):
                note(fact, zh_number(m.group(1)), m.start())
            # 死咗好多: the word, then a vague amount.
            for m in re.finditer(rf"(?:{zh})(?:了|咗)?({'|'.join(_VAGUE[:-1])})", text):
                note(fact, 2, m.start())
            # 有人被困, 有工人被埋: someone.
            for m in re.finditer(rf"有[\u4e00-\u9fff]{{0,3}}?(?:{zh})", text):
                note(fact, 1, m.start())
        if en:
            for m in re.finditer(rf"\b({_NUM_EN})\s+(?:[a-z'-]+\s+){{0,2}}?(?:{en})\b", text):
                token = m.group(1)
                note(fact, int(token) if token.isdigit() else _EN_NUMBERS[token], m.start())
            for m in re.finditer(rf"\b(?:{en})\b", text):
                note(fact, 1, m.start())
    return found


def casualties(facts: dict[str, int]) -> int | None:
    """伤亡: the dead and the injured together, as the plans' casualties_gte rules count them."""
    if "deaths" not in facts and "injured" not in facts:
        return None
    return facts.get("deaths", 0) + facts.get("injured", 0)


def grade_hint(facts: dict[str, int]) -> Grade | None:
    deaths, injured = facts.get("deaths", 0), facts.get("injured", 0)
    for grade, dead_at, injured_at in _HINTS:
        if deaths >= dead_at or injured >= injured_at:
            return grade
    return None
