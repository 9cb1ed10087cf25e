"""The console's words: one catalogue per language (catalogue/zh.yaml, catalogue/en.yaml), zh-CN by default.

A key missing from a catalogue shows as the key itself rather than failing the page, and tests/unit/test_console.py
keeps both catalogues' keys equal and every key a template uses present."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_DIR = Path(__file__).parent / "catalogue"
LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_COOKIE = "pingan_lang"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    path = CATALOGUE_DIR / f"{lang if lang in LANGS else DEFAULT_LANG}.yaml"
    return _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def normal_lang(value: str | None) -> str:
    """zh, zh-CN, en, en-GB… to one of LANGS; anything else is the default."""
    head = (value or "").strip().lower()[:2]
    return head if head in LANGS else DEFAULT_LANG


def translate(lang: str, key: str, **fields: Any) -> str:
    text = catalogue(lang).get(key)
    if text is None:
        return key
    return text.format(**fields) if fields else text


def term(lang: str, group: str, value: object) -> str:
    """A value's word in a group of the catalogue (grade, category, subtype, kind…), or the value itself."""
    raw = getattr(value, "value", value)
    return catalogue(lang).get(f"{group}.{raw}", str(raw))
