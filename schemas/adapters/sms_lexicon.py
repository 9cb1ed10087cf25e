"""The SMS hotline's lexicon (lexicon/sms.yaml, shipped as package data) and the jieba tokenizer that knows its words.

Chinese has no spaces, so finding 火 by substring also finds it in 火锅 (hotpot) and 火车 (train). jieba cuts a text
into words with its own dictionary (inside the wheel: nothing is downloaded); the lexicon's terms and the district's
place names are added to it, so a term counts only where jieba cuts it out as a whole word.
"""

import functools
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import jieba
import yaml
from pydantic import ConfigDict, Field, model_validator

from pingan.schemas.common import Model
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Subtype

LEXICON_FILE = Path(__file__).resolve().parent / "lexicon" / "sms.yaml"
WEIGHTS = {"decisive": 3, "strong": 2, "weak": 1}
COMBO_WEIGHT = 3
# jieba's word frequencies: "的" is about 3e5. Lexicon words get this much so jieba keeps them whole.
_WORD_FREQ = 50_000
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")

# jieba logs its dictionary loading at DEBUG on its own stderr handler; a worker's log is no place for it.
jieba.setLogLevel(logging.WARNING)

Terms = tuple[str, ...]


class LexiconEntry(Model):
    """One meaning: the words that say it and where it sits in the taxonomy."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    category: Category
    subtype: Subtype
    hazard: str | None = Field(default=None, max_length=64)
    decisive: Terms = ()
    strong: Terms = ()
    weak: Terms = ()
    combos: tuple[tuple[Terms, Terms], ...] = Field(
        default=(), description="Pairs of term lists: one term of each found anywhere scores 3")
    overrides: Terms = Field(default=(), description="Entry ids dropped when this one classifies the text")

    @model_validator(mode="after")
    def _consistent(self) -> "LexiconEntry":
        if self.subtype not in SUBTYPES_BY_CATEGORY[self.category]:
            raise ValueError(f"subtype {self.subtype.value!r} is not in category {self.category.value!r}")
        if not (self.decisive or self.strong or self.weak or self.combos):
            raise ValueError(f"entry {self.id!r} has no terms")
        return self

    def weighted_terms(self) -> Iterable[tuple[str, int]]:
        for tier, weight in WEIGHTS.items():
            for term in getattr(self, tier):
                yield term, weight


class Lexicon(Model):
    """The whole vocabulary of the classifier (schemas/adapters/sms_classifier.py). In PINGAN_INTAKE_CONFIG's
    `sms_keywords`, a lexicon with `extends_default: true` adds its entries and cue words to the shipped ones (its
    entries first, so they win ties); without it, it replaces them."""

    model_config = ConfigDict(frozen=True)

    entries: tuple[LexiconEntry, ...] = Field(min_length=1)
    extends_default: bool = False
    traditional: str = Field(default="", description="Pairs of traditional and simplified characters")
    negation_window: int = Field(default=3, ge=1, le=10)
    negations: Terms = ()
    scope_breaks: Terms = ()
    fillers: Terms = ()
    neutral: Terms = Field(default=(), description="Words that hide the terms inside them (烟雾报警器, smoke alarm)")
    retractions: Terms = ()
    resolved: Terms = ()
    facts: dict[str, Terms] = Field(default_factory=dict)
    area_aliases: dict[str, Terms] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "Lexicon":
        ids = [e.id for e in self.entries]
        if len(ids) != len(set(ids)):
            raise ValueError("entry ids must be unique")
        unknown = {o for e in self.entries for o in e.overrides} - set(ids)
        if unknown and not self.extends_default:
            raise ValueError(f"overrides name unknown entries: {sorted(unknown)}")
        pairs = "".join(self.traditional.split())
        if len(pairs) % 2:
            raise ValueError("traditional must be pairs of characters")
        return self

    def over(self, base: "Lexicon") -> "Lexicon":
        """This lexicon's entries and words added to `base`'s (extends_default)."""
        mine = {e.id for e in self.entries}
        merged = {name: tuple(dict.fromkeys((*getattr(self, name), *getattr(base, name))))
                  for name in ("negations", "scope_breaks", "fillers", "neutral", "retractions", "resolved")}
        facts = {k: tuple(dict.fromkeys((*self.facts.get(k, ()), *base.facts.get(k, ()))))
                 for k in {*self.facts, *base.facts}}
        aliases = {k: tuple(dict.fromkeys((*self.area_aliases.get(k, ()), *base.area_aliases.get(k, ()))))
                   for k in {*self.area_aliases, *base.area_aliases}}
        return Lexicon(entries=(*self.entries, *(e for e in base.entries if e.id not in mine)),
                       traditional=base.traditional + self.traditional, negation_window=self.negation_window,
                       facts=facts, area_aliases=aliases, **merged)

    def simplify_table(self) -> dict[int, str]:
        pairs = "".join(self.traditional.split())
        return {ord(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}

    def words(self) -> frozenset[str]:
        """Every Chinese word the tokenizer must keep whole: terms, cue words, combo terms."""
        found: set[str] = set()
        for entry in self.entries:
            found.update(t for t, _ in entry.weighted_terms())
            found.update(t for a, b in entry.combos for t in (*a, *b))
        for name in ("negations", "scope_breaks", "neutral", "retractions", "resolved"):
            found.update(getattr(self, name))
        for terms in (*self.facts.values(), *self.area_aliases.values()):
            found.update(terms)
        return frozenset(w for w in found if _CJK.search(w))


def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    return Lexicon.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


DEFAULT_LEXICON = load_lexicon()


@functools.lru_cache(maxsize=8)
def tokenizer(words: frozenset[str]) -> jieba.Tokenizer:
    """A jieba tokenizer of its own (the module-level one is shared with whatever else imports jieba) that keeps
    `words` whole. Built once per word set: loading jieba's dictionary takes about a second."""
    tok = jieba.Tokenizer()
    tok.initialize()
    for word in sorted(words):
        tok.add_word(word, freq=_WORD_FREQ)
    return tok


def cut(text: str, words: frozenset[str]) -> list[str]:
    """`text` (already lower-cased and simplified) as words, whitespace dropped. HMM is off: with the HMM, jieba
    invents words from unknown characters and may glue a term to its neighbour."""
    return [t for t in tokenizer(words).cut(text, HMM=False) if t.strip()]
