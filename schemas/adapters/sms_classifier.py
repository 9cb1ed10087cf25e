"""A citizen's text to the taxonomy: category, subtype and hazard, the place it names, and counted facts. Pure.

How: strip control characters and invisible formatting; fold full-width forms, traditional characters and case;
cut the text into words with jieba (schemas/adapters/sms_lexicon.py); find the lexicon's terms among the words;
drop the negated ones ("没有着火", "冇火", "not a fire"); score each lexicon entry (decisive 3, strong 2, weak 1,
a combination of two words 3), let an entry that classifies drop the entries it overrides, and take the best.

A text whose best entry scores under 2 is no report we can read: a greeting, a test, noise, a lone weak word.
It becomes an unclassified report (other/unclassified, grade IV), which the unclassified-report procedure
(plans/unclassified-report.yaml) puts on the duty room's console only, to reclassify or close; the weak word it
had, if any, is kept as a hint. So control characters plus 火 are not a confident fire: once the noise is
stripped, a lone 火 is a hint, not a report.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ConfigDict, Field

from pingan.schemas.adapters.areas import DEFAULT_AREAS, Area, AreaTable
from pingan.schemas.adapters.sms_facts import count_facts, grade_hint
from pingan.schemas.adapters.sms_lexicon import COMBO_WEIGHT, DEFAULT_LEXICON, Lexicon, cut
from pingan.schemas.common import Model
from pingan.schemas.taxonomy import Category, Grade, Subtype

CLASSIFY_AT = 2  # a decisive or strong word, or two weak ones
UNCLASSIFIED_CATEGORY, UNCLASSIFIED_SUBTYPE = Category.other, Subtype.unclassified

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_PUNCT = frozenset("，。！？；：、,.!?;:…~()（）[]【】\"'“”‘’/|-")
_SUFFIXES = (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("'s", ""))


class Classification(Model):
    """What the classifier made of one text."""

    model_config = ConfigDict(frozen=True)

    category: Category
    subtype: Subtype
    hazard: str | None = None
    unclassified: bool
    entry: str | None = Field(default=None, description="The lexicon entry that classified the text")
    hint: str | None = Field(default=None, description="Unclassified: the entry its weak words pointed to")
    terms: tuple[str, ...] = Field(default=(), description="The words that decided it, strongest first")
    negated: tuple[str, ...] = ()
    score: int = 0
    resolved: bool = Field(default=False, description="The sender says it is over (火已经灭了)")
    retracted: bool = Field(default=False, description="The sender takes it back (误会, false alarm)")
    noise: int = Field(default=0, description="Control or invisible characters stripped")
    text: str = Field(default="", description="The cleaned text that was classified")
    area: Area | None = None
    facts: dict[str, int] = Field(default_factory=dict)
    grade_hint: Grade | None = None


def clean(text: str) -> tuple[str, int]:
    """The text as typed without control, format and private-use characters (ANSI escapes whole; tabs and line
    breaks stay), and how many characters were stripped."""
    stripped = _ANSI.sub("", text)
    removed = len(text) - len(stripped)
    kept: list[str] = []
    for ch in stripped:
        if ch not in "\n\r\t" and (unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") or ch == "\ufffd"):
            removed += 1
        else:
            kept.append(ch)
    return "".join(kept).strip(), removed


def _folded(text: str) -> str:
    """NFKC (full-width letters, digits and punctuation to plain ones), line breaks as full stops: they end a
    negation's reach."""
    return re.sub(r"[\r\n]+", "。", unicodedata.normalize("NFKC", text))


def _forms(token: str) -> Iterable[str]:
    """A word and, for English, its stems: "flooded" is found by "flood", "fires" by "fire"."""
    yield token
    if token.isascii() and token.isalpha() and len(token) > 3:
        for suffix, repl in _SUFFIXES:
            if token.endswith(suffix):
                yield token[: -len(suffix)] + repl


@dataclass(frozen=True)
class _Seq:
    words: tuple[str, ...]
    kind: str  # term, combo, negation, retraction, resolved, neutral
    entry: str = ""
    weight: int = 0
    combo: tuple[int, int] = (0, 0)  # (combo index, side)
    term: str = ""


@dataclass
class _Index:
    """A lexicon's terms as word sequences, keyed by their first word; built once per lexicon and area set."""

    lexicon: Lexicon
    areas: AreaTable
    named: AreaTable  # areas with the lexicon's extra aliases
    words: frozenset[str]
    simplify: dict[int, str]
    first: dict[str, list[_Seq]] = field(default_factory=dict)
    breaks: frozenset[str] = frozenset()
    fillers: frozenset[str] = frozenset()
    negations: list[_Seq] = field(default_factory=list)

    def add(self, term: str, **kind: object) -> None:
        words = tuple(cut(self.normalise(term), self.words))
        if words:
            self.first.setdefault(words[0], []).append(_Seq(words=words, term=term, **kind))  # type: ignore[arg-type]

    def normalise(self, text: str) -> str:
        return text.translate(self.simplify).casefold().replace("\u2019", "'")


_INDEXES: dict[tuple[int, int], _Index] = {}


def _index(lexicon: Lexicon, areas: AreaTable) -> _Index:
    key = (id(lexicon), id(areas))
    cached = _INDEXES.get(key)
    if cached is not None and cached.lexicon is lexicon and cached.areas is areas:
        return cached
    named = areas.with_aliases(lexicon.area_aliases)
    places = frozenset(n for n in named.names() if not n.isascii())
    index = _Index(lexicon=lexicon, areas=areas, named=named, words=lexicon.words() | places,
                   simplify=lexicon.simplify_table())
    index.breaks = frozenset(index.normalise(w) for w in lexicon.scope_breaks)
    index.fillers = frozenset(index.normalise(w) for w in lexicon.fillers)
    for entry in lexicon.entries:
        for term, weight in entry.weighted_terms():
            index.add(term, kind="term", entry=entry.id, weight=weight)
        for n, sides in enumerate(entry.combos):
            for side, terms in enumerate(sides):
                for term in terms:
                    index.add(term, kind="combo", entry=entry.id, combo=(n, side))
    for kind, terms in (("negation", lexicon.negations), ("retraction", lexicon.retractions),
                        ("resolved", lexicon.resolved), ("neutral", lexicon.neutral)):
        for term in terms:
            index.add(term, kind=kind)
    index.negations = [s for seqs in index.first.values() for s in seqs if s.kind == "negation"]
    if len(_INDEXES) > 16:  # configs are few; a leak guard, not a cache policy
        _INDEXES.clear()
    _INDEXES[key] = index
    return index


def _at(tokens: list[str], i: int, seq: _Seq) -> bool:
    if i + len(seq.words) > len(tokens):
        return False
    return all(w in set(_forms(tokens[i + k])) for k, w in enumerate(seq.words))


def _negated(tokens: list[str], start: int, index: _Index) -> bool:
    """A negation within the window before `start`, with no punctuation or contrast word between."""
    j, counted = start - 1, 0
    while j >= 0 and counted < index.lexicon.negation_window:
        token = tokens[j]
        if token in _PUNCT or token in index.breaks:
            return False
        if any(_at(tokens, j - len(n.words) + 1, n) for n in index.negations if j - len(n.words) + 1 >= 0):
            return True
        if token not in index.fillers:
            counted += 1
        j -= 1
    return False


def classify(text: str, lexicon: Lexicon = DEFAULT_LEXICON, areas: AreaTable = DEFAULT_AREAS) -> Classification:
    index = _index(lexicon, areas)
    cleaned, noise = clean(text)
    normal = index.normalise(_folded(cleaned))
    tokens = [t for t in cut(normal, index.words) if t.strip()]

    found: list[tuple[int, _Seq]] = []
    for i, token in enumerate(tokens):
        for form in dict.fromkeys(_forms(token)):
            found.extend((i, seq) for seq in index.first.get(form, ()) if _at(tokens, i, seq))
    # A neutral phrase hides what it spans: "smoke alarm" says nothing of smoke.
    hidden = {k for i, seq in found if seq.kind == "neutral" for k in range(i, i + len(seq.words))}
    found = [(i, seq) for i, seq in found if seq.kind == "neutral" or i not in hidden]
    retracted = any(s.kind == "retraction" and not _negated(tokens, i, index) for i, s in found)
    resolved = any(s.kind == "resolved" for _, s in found)

    scores: dict[str, int] = {}
    terms: dict[str, dict[str, int]] = {}
    sides: dict[tuple[str, int], set[int]] = {}
    negated: list[str] = []
    for i, seq in found:
        if seq.kind not in ("term", "combo"):
            continue
        if retracted or _negated(tokens, i, index):
            negated.append(seq.term)
        elif seq.kind == "term":
            terms.setdefault(seq.entry, {})[seq.term] = seq.weight
        else:
            sides.setdefault((seq.entry, seq.combo[0]), set()).add(seq.combo[1])
            terms.setdefault(seq.entry, {}).setdefault(seq.term, 0)
    for entry_id, weights in terms.items():
        scores[entry_id] = sum(weights.values())
    for (entry_id, _), seen in sides.items():
        if seen == {0, 1}:
            scores[entry_id] = scores.get(entry_id, 0) + COMBO_WEIGHT
    if resolved and scores and not retracted:
        # "火已经灭了": putting out a fire says there was one; the word the cue follows stops being a mere hint.
        top = max(scores, key=lambda e: scores[e])
        scores[top] += 1

    order = {e.id: n for n, e in enumerate(lexicon.entries)}
    entries = {e.id: e for e in lexicon.entries}
    ranked = sorted((s, -order[e], e) for e, s in scores.items() if s > 0)[::-1]
    dropped: set[str] = set()
    for score, _, entry_id in ranked:
        if entry_id not in dropped and score >= CLASSIFY_AT:
            dropped.update(o for o in entries[entry_id].overrides if o != entry_id)
    best = next(((s, e) for s, _, e in ranked if e not in dropped), None)

    place = index.named.match(normal) if normal else None
    facts = count_facts(normal, {k: tuple(index.normalise(w) for w in v) for k, v in lexicon.facts.items()})
    common = {"negated": tuple(dict.fromkeys(negated)), "resolved": resolved, "retracted": retracted,
              "noise": noise, "text": cleaned, "area": place, "facts": facts, "grade_hint": grade_hint(facts)}
    if best is None or best[0] < CLASSIFY_AT:
        return Classification(category=UNCLASSIFIED_CATEGORY, subtype=UNCLASSIFIED_SUBTYPE, unclassified=True,
                              hint=best[1] if best else None, score=best[0] if best else 0, **common)
    score, entry_id = best
    entry = entries[entry_id]
    decided = tuple(t for t, w in sorted(terms[entry_id].items(), key=lambda tw: -tw[1]))
    return Classification(category=entry.category, subtype=entry.subtype, hazard=entry.hazard, unclassified=False,
                          entry=entry_id, terms=decided, score=score, **common)
