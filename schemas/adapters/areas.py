"""The district's named areas, for finding a place in a citizen's text: from the district GeoJSON
(PINGAN_DISTRICT_AREAS, default the shipped plans/areas/tangjiawan.geojson, parsed by schemas/areas.py). Only the
names count here (code, name_zh, name_en, aliases); the polygons are for the CAP area check.
"""

import functools
import re
from pathlib import Path

from pydantic import ConfigDict, Field, PrivateAttr

from pingan.plans import PLANS_DIR
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.areas import District, DistrictFileError, district_from_geojson
from pingan.schemas.common import Model

AREAS_FILE = PLANS_DIR / "areas" / "tangjiawan.geojson"


class Area(Model):
    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    aliases: tuple[str, ...] = ()


class AreaTable(Model):
    """Known areas. Of the names found in a text, one inside a longer one does not count (唐家 inside 唐家湾大道 is
    the town's road, not the community); of the rest, the most specific area wins (唐家湾镇鸡山村 is Jishan, not the
    town), then the longer name, then the one found first."""

    model_config = ConfigDict(frozen=True)

    areas: tuple[Area, ...]
    # Every name as one pattern, built once: with the grids (issue 18) the table has hundreds of names, and a loop
    # over them per text cost about 0.5 ms. Longest first, so each position yields its longest name: a shorter one
    # starting there lies inside it and would not count anyway.
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)
    _by_term: dict[str, tuple[Area, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        by_term: dict[str, list[Area]] = {}
        for area in self.areas:
            for term in (area.name, *area.aliases):
                if term.strip():
                    by_term.setdefault(term.casefold(), []).append(area)
        self._by_term = {t: tuple(dict.fromkeys(a)) for t, a in by_term.items()}
        # A Latin name counts as whole words only ("Tangle" is a community, not a part of "tangled"); "Qi'ao" is
        # found as typed with either apostrophe (match folds them).
        alternatives = [re.escape(t) if not t.isascii() else rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])"
                        for t in sorted(self._by_term, key=len, reverse=True)]
        self._pattern = re.compile("(?=(" + "|".join(alternatives) + "))") if alternatives else None

    def match(self, text: str) -> Area | None:
        folded = text.casefold().replace("\u2019", "'").replace("\u2018", "'")
        found: list[tuple[int, int, Area]] = []
        for m in self._pattern.finditer(folded) if self._pattern is not None else ():
            term, at = m.group(1), m.start()
            found += [(at, at + len(term), area) for area in self._by_term[term]]
        kept = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and o[1] - o[0] > f[1] - f[0]
                                            for o in found)]
        if not kept:
            return None
        return min(kept, key=lambda f: (-len(f[2].code), f[0] - f[1], f[0]))[2]

    def names(self) -> frozenset[str]:
        return frozenset(t for a in self.areas for t in (a.name, *a.aliases))

    def with_aliases(self, extra: dict[str, tuple[str, ...]]) -> "AreaTable":
        """The same areas with more aliases per area code (colloquial names the area file does not list)."""
        if not extra:
            return self
        return AreaTable(areas=tuple(
            a.model_copy(update={"aliases": tuple(dict.fromkeys((*a.aliases, *extra.get(a.code, ()))))})
            for a in self.areas))


def area_table(district: District) -> AreaTable:
    """The district's areas as names to look for: the Chinese name, the English one and the aliases."""
    return AreaTable(areas=tuple(
        Area(code=a.code, name=a.name_zh or a.name_en or a.code,
             aliases=tuple(dict.fromkeys(n for n in (a.name_en, *a.aliases) if n)))
        for a in district.areas))


def load_areas(path: Path = AREAS_FILE) -> AreaTable:
    """The named areas of a district GeoJSON file (schemas/areas.py reads it). An unusable file is an IntakeError
    naming it."""
    try:
        return area_table(district_from_geojson(path.read_text(encoding="utf-8"), str(path)))
    except OSError as exc:
        raise IntakeError(f"cannot read the areas file: {exc}", source=str(path)) from None
    except DistrictFileError as exc:
        raise IntakeError(str(exc), field=exc.field, line=exc.line, source=str(path)) from None


@functools.lru_cache(maxsize=4)
def areas_from(path: Path | None) -> AreaTable:
    """The areas of `path`, or of the shipped file; read once per path."""
    return load_areas(path or AREAS_FILE)


DEFAULT_AREAS = areas_from(None)
