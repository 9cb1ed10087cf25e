"""How a CAP message's category, event, severity, urgency and certainty become Pingan's taxonomy and grade.

The defaults below are one table each, in order, first match wins; a deployment can pass its own CapMapping.

Hazard (CAP category + event text or event code -> category/subtype/hazard), DEFAULT_HAZARD_RULES:
    typhoon, hurricane, tropical cyclone/storm, 台风 颱風, ciclón tropical
                                    -> natural_disaster/meteorological, hazard typhoon
    storm surge, 风暴潮             -> natural_disaster/marine storm_surge
    tsunami, 海啸 海嘯              -> natural_disaster/marine tsunami
    earthquake, 地震                -> natural_disaster/earthquake earthquake
    volcano; landslide, 滑坡 泥石流; avalanche
                                    -> natural_disaster/geological volcano, landslide, avalanche
    wildfire, bushfire, forest/grass fire, 森林火灾 山火
                                    -> natural_disaster/forest_fire wildfire
    dam failure 溃坝; reservoir 水库 水庫 泄洪 洩洪; flash flood 山洪; flood 洪水 内涝; drought 干旱
                                    -> natural_disaster/flood_drought dam_failure, reservoir_discharge,
                                       flash_flood, flood, drought
    rainstorm 暴雨, blizzard/snow 暴雪, tornado, thunderstorm 雷暴 雷雨, hail 冰雹, cold 寒冷 寒潮, wind/gale 大风,
    heat/hot weather 高温 酷热, fog 大雾, sandstorm
                                    -> natural_disaster/meteorological, hazard as named (rainstorm,
                                       blizzard, tornado, thunderstorm, hail, cold_wave, gale, heat_wave, fog,
                                       sandstorm)
    nuclear/radiological; chemical/hazmat 危化
                                    -> accident_disaster/hazardous_chemicals radiological, chemical_release
    explosion 爆炸; power outage 停电; pollution/oil spill 污染
                                    -> accident_disaster/industrial_safety, public_facility,
                                       environmental_pollution
    avian flu 禽流感; food poisoning 食物中毒; epidemic/outbreak 疫情
                                    -> public_health/animal_epidemic, food_occupational_poisoning,
                                       infectious_disease
    air raid, air defence, 防空 空袭 空襲, missile
                                    -> other/general, hazard air_raid (the taxonomy has no civil-defence subtype;
                                       naming the event is honest, any of the four categories would be a guess)
    terror/homeland security 恐怖; child abduction/AMBER 绑架; riot; cyber
                                    -> social_security/terrorist_attack, mass_incident, mass_incident, cyber
Words are matched in the event text of the chosen <info>, then of the others (so an English info can classify a
message whose Chinese event word is unknown); Latin words must start a word ("dust" does not match
"industrial"), CJK words match anywhere. SAME event codes (EQW, TSW, FFW, SVR, CAE…) match too.

When no rule matches, an <event> that is exactly the name of a subtype in schemas/adapters/cap_terms.py
(SUBTYPE_TERMS, the table export writes them from: 经济安全事件, "Criminal case"…) is that subtype.

When nothing else matches, the first CAP category with a fallback decides, DEFAULT_CATEGORY_FALLBACKS. A fallback names
a category and subtype only where the CAP category alone says which one it is, and never a hazard:
    Geo -> natural_disaster/geological      Met -> natural_disaster/meteorological
    Fire -> accident_disaster/fire          CBRNE -> accident_disaster/hazardous_chemicals
    Infra -> accident_disaster/public_facility
    Env -> accident_disaster/environmental_pollution     Transport -> accident_disaster/transport
    Other, Safety, Security, Rescue, Health -> other/general: each spans kinds of event the four categories keep
        apart (a Health notice may be a blood-stock appeal, Security an air-raid drill, Safety a monthly test),
        so a guess would start the wrong plan; other/general goes to the catch-all plan (通用突发事件)
and otherwise (a message without <info>, or a category no table knows) default_target: other/general.

Grade (severity x urgency x certainty), DEFAULT_GRADE_RULES:
    Extreme + Immediate + Observed|Likely -> I;  Extreme otherwise -> II
    Severe + Immediate -> II;  Severe otherwise -> III
    Moderate -> III;  Minor, Unknown (and anything else) -> IV
Warning colour follows the grade (I red, II orange, III yellow, IV blue), except for social_security and other
events, which carry no warning colour.

Export (schemas/adapters/cap_out.py) uses the inverse of these same tables, never tables of its own:
CapMapping.cap_event (category/subtype -> CAP category and event, from cap_terms; a hazard -> the first zh keyword
of its rule and its name), CapMapping.cap_grade_terms (grade -> the severity, urgency and certainty the grade rules
above map back to that grade, preferring Extreme/Severe/Moderate/Minor for I/II/III/IV, Expected, Likely).
"""

import re
from functools import cache, cached_property

from pydantic import ConfigDict, Field, model_validator

from pingan.schemas.adapters.cap_terms import SUBTYPE_TERMS, SubtypeTerms, hazard_event_en
from pingan.schemas.common import Model
from pingan.schemas.taxonomy import SUBTYPES_BY_CATEGORY, Category, Grade, Subtype, WarningColour

_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")


class HazardTarget(Model):
    model_config = ConfigDict(frozen=True)

    category: Category
    subtype: Subtype
    hazard: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _subtype_in_category(self) -> "HazardTarget":
        if self.subtype not in SUBTYPES_BY_CATEGORY[self.category]:
            raise ValueError(f"subtype {self.subtype.value!r} is not in category {self.category.value!r}")
        return self


class HazardRule(Model):
    model_config = ConfigDict(frozen=True)

    cap_categories: frozenset[str] = Field(default=frozenset(), description="CAP categories it applies to; empty: any")
    keywords: tuple[str, ...] = ()
    event_codes: tuple[str, ...] = Field(default=(), description="eventCode values, e.g. SAME codes (EQW, TSW)")
    target: HazardTarget

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.keywords:
            return None
        # Latin words must start a word; CJK has no word boundaries, so it matches anywhere.
        parts = [re.escape(k.casefold()) if _CJK.match(k) else r"(?<!\w)" + re.escape(k.casefold())
                 for k in self.keywords]
        return re.compile("|".join(parts))

    def matches(self, cap_categories: list[str], event: str, event_codes: list[str]) -> bool:
        if self.cap_categories and not self.cap_categories.intersection(cap_categories):
            return False
        pattern = self._pattern
        if pattern is not None and pattern.search(event.casefold()):
            return True
        codes = {c.upper() for c in self.event_codes}
        return any(code.strip().upper() in codes for code in event_codes)


class GradeRule(Model):
    model_config = ConfigDict(frozen=True)

    severity: frozenset[str]
    urgency: frozenset[str] | None = Field(default=None, description="None: any urgency")
    certainty: frozenset[str] | None = Field(default=None, description="None: any certainty")
    grade: Grade


class InfoFacts(Model):
    """What the mapping needs from one <info>."""

    categories: list[str] = Field(default_factory=list)
    event: str = ""
    event_codes: list[str] = Field(default_factory=list)


def _t(category: Category, subtype: Subtype, hazard: str | None = None) -> HazardTarget:
    return HazardTarget(category=category, subtype=subtype, hazard=hazard)


def _r(target: HazardTarget, *keywords: str, codes: tuple[str, ...] = (), cats: frozenset[str] = frozenset()
       ) -> HazardRule:
    return HazardRule(cap_categories=cats, keywords=keywords, event_codes=codes, target=target)


_N, _A, _P, _S = Category.natural_disaster, Category.accident_disaster, Category.public_health, Category.social_security
_MET = Subtype.meteorological
_O, _GENERAL = Category.other, Subtype.general

DEFAULT_HAZARD_RULES: tuple[HazardRule, ...] = (
    _r(_t(_N, _MET, "typhoon"), "typhoon", "hurricane", "tropical cyclone", "tropical storm", "tropical depression",
       "cyclone", "台风", "颱風", "热带气旋", "熱帶氣旋", "热带风暴", "熱帶風暴", "ciclón tropical", "ciclon tropical",
       "huracán", "huracan", "tormenta tropical", codes=("HUW", "HUA", "HLS", "TRW", "TRA")),
    _r(_t(_N, Subtype.marine, "storm_surge"), "storm surge", "风暴潮", "風暴潮", codes=("SSW", "SSA")),
    _r(_t(_N, Subtype.marine, "tsunami"), "tsunami", "海啸", "海嘯", "maremoto", codes=("TSW", "TSA")),
    _r(_t(_N, Subtype.earthquake, "earthquake"), "earthquake", "quake", "地震", "sismo", "terremoto",
       codes=("EQW",)),
    _r(_t(_N, Subtype.geological, "volcano"), "volcan", "火山", codes=("VOW",)),
    _r(_t(_N, Subtype.geological, "landslide"), "landslide", "mudslide", "debris flow", "rockfall", "滑坡",
       "泥石流", "崩塌", "土石流", "山崩", "地质灾害", "地質災害"),
    _r(_t(_N, Subtype.geological, "avalanche"), "avalanche", "雪崩", codes=("AVW", "AVA")),
    # Before wildfire: 森林火险 (a fire-danger warning, no fire yet) contains the wildfire word 林火.
    _r(_t(_N, Subtype.forest_fire, "fire_danger"), "red flag", "fire weather", "fire danger", "森林火险",
       "森林火險"),
    _r(_t(_N, Subtype.forest_fire, "wildfire"), "wildfire", "wild fire", "bushfire", "bush fire", "forest fire",
       "grass fire", "grassfire", "brush fire", "森林火灾", "森林火災", "草原火灾", "山火", "林火",
       codes=("FRW",)),
    _r(_t(_N, Subtype.flood_drought, "dam_failure"), "dam failure", "dam break", "levee", "溃坝", "潰壩", "决堤",
       "決堤", codes=("DBW", "DBA")),
    _r(_t(_N, Subtype.flood_drought, "reservoir_discharge"), "reservoir", "水库", "水庫", "泄洪", "洩洪", "放流"),
    _r(_t(_N, Subtype.flood_drought, "flash_flood"), "flash flood", "山洪", codes=("FFW", "FFA", "FFS")),
    _r(_t(_N, Subtype.flood_drought, "flood"), "flood", "洪水", "洪涝", "洪澇", "内涝", "內澇", "淹水", "inondation",
       "inundación", codes=("FLW", "FLA", "FLS")),
    _r(_t(_N, Subtype.flood_drought, "drought"), "drought", "干旱", "乾旱", "旱灾", "旱災"),
    _r(_t(_N, _MET, "rainstorm"), "rainstorm", "heavy rain", "暴雨", "大雨", "豪雨"),
    _r(_t(_N, _MET, "blizzard"), "blizzard", "winter storm", "snow", "ice storm", "暴雪", "雪灾", "雪災", "大雪",
       codes=("BZW", "WSW", "WSA")),
    _r(_t(_N, _MET, "tornado"), "tornado", "龙卷", "龍捲", codes=("TOR", "TOA")),
    _r(_t(_N, _MET, "thunderstorm"), "thunderstorm", "orage", "雷暴", "雷电", "雷電", "雷雨",
       codes=("SVR", "SVA", "SVS")),
    _r(_t(_N, _MET, "hail"), "hail", "冰雹"),
    # 寒冷 is the name of Guangdong's cold warning signal (寒冷黄色/橙色/红色预警信号), 酷热 Hong Kong's heat warning.
    _r(_t(_N, _MET, "cold_wave"), "cold", "frost", "freeze", "wind chill", "寒潮", "寒冷", "低温", "霜冻", "冰冻"),
    _r(_t(_N, _MET, "gale"), "wind", "gale", "viento", "大风", "大風", codes=("HWW", "HWA", "EWW")),
    _r(_t(_N, _MET, "heat_wave"), "heat", "hot weather", "高温", "高溫", "酷热", "酷熱", "炎热", "炎熱"),
    _r(_t(_N, _MET, "fog"), "fog", "大雾", "大霧"),
    _r(_t(_N, _MET, "sandstorm"), "sandstorm", "dust storm", "沙尘", "沙塵", codes=("DSW",)),
    _r(_t(_A, Subtype.hazardous_chemicals, "radiological"), "nuclear", "radiolog", "核泄漏", "核事故", "辐射",
       "輻射", codes=("NUW", "RHW")),
    _r(_t(_A, Subtype.hazardous_chemicals, "chemical_release"), "chemical", "hazardous material", "hazmat", "危化",
       "化学品", "化學品", codes=("HMW",)),
    _r(_t(_A, Subtype.industrial_safety, "explosion"), "explosion", "爆炸"),
    _r(_t(_A, Subtype.public_facility, "power_outage"), "power outage", "blackout", "停电", "停電", codes=("POS",)),
    _r(_t(_A, Subtype.environmental_pollution), "pollution", "oil spill", "air quality", "污染"),
    _r(_t(_P, Subtype.animal_epidemic), "avian", "bird flu", "animal disease", "禽流感", "动物疫情", "動物疫情",
       "猪瘟", "豬瘟"),
    _r(_t(_P, Subtype.food_occupational_poisoning), "food poisoning", "食物中毒", "食品安全"),
    _r(_t(_P, Subtype.infectious_disease), "epidemic", "pandemic", "outbreak", "influenza", "covid", "疫情",
       "传染病", "傳染病"),
    # Before the terror, crowd and riot words could claim it: an air-raid drill once started the crowd-crush plan.
    _r(_t(_O, _GENERAL, "air_raid"), "air raid", "air-raid", "air defence", "air defense", "civil defence",
       "civil defense", "missile", "防空", "空袭", "空襲", "人防", "萬安演習", "万安演习"),
    _r(_t(_S, Subtype.terrorist_attack, "terrorism"), "terror", "homeland security", "bomb", "explosive device",
       "active shooter", "恐怖", "爆炸物"),
    _r(_t(_S, Subtype.mass_incident, "child_abduction"), "abduction", "amber alert", "kidnap", "missing child",
       "abducción", "绑架", "綁架", "拐卖", codes=("CAE",)),
    _r(_t(_S, Subtype.mass_incident, "civil_disturbance"), "riot", "civil disturbance", "civil unrest",
       "群体性", "騷亂", "骚乱"),
    _r(_t(_S, Subtype.cyber), "cyber", "网络攻击", "網路攻擊"),
)

DEFAULT_CATEGORY_FALLBACKS: dict[str, HazardTarget] = {
    "Geo": _t(_N, Subtype.geological),
    "Met": _t(_N, _MET),
    "Fire": _t(_A, Subtype.fire),
    "CBRNE": _t(_A, Subtype.hazardous_chemicals),
    "Infra": _t(_A, Subtype.public_facility),
    "Env": _t(_A, Subtype.environmental_pollution),
    "Transport": _t(_A, Subtype.transport),
    # Spans the four categories: the duty room decides, through the catch-all plan.
    "Health": _t(_O, _GENERAL),
    "Security": _t(_O, _GENERAL),
    "Safety": _t(_O, _GENERAL),
    "Rescue": _t(_O, _GENERAL),
    "Other": _t(_O, _GENERAL),
}

_OBSERVED_OR_LIKELY = frozenset({"Observed", "Likely"})
DEFAULT_GRADE_RULES: tuple[GradeRule, ...] = (
    GradeRule(severity=frozenset({"Extreme"}), urgency=frozenset({"Immediate"}), certainty=_OBSERVED_OR_LIKELY,
              grade=Grade.I),
    GradeRule(severity=frozenset({"Extreme"}), grade=Grade.II),
    GradeRule(severity=frozenset({"Severe"}), urgency=frozenset({"Immediate"}), grade=Grade.II),
    GradeRule(severity=frozenset({"Severe"}), grade=Grade.III),
    GradeRule(severity=frozenset({"Moderate"}), grade=Grade.III),
)

DEFAULT_COLOURS: dict[Grade, WarningColour] = {
    Grade.I: WarningColour.red,
    Grade.II: WarningColour.orange,
    Grade.III: WarningColour.yellow,
    Grade.IV: WarningColour.blue,
}


def _event_names() -> dict[str, HazardTarget]:
    names: dict[str, HazardTarget] = {}
    for (category, subtype), terms in SUBTYPE_TERMS.items():
        for name in (terms.event_zh, terms.event_en):
            names[name.casefold()] = _t(category, subtype)
    return names


# Export's preferences among the CAP values that map back to a grade: the severity a grade's colour means in the
# national warning system (红 Extreme, 橙 Severe, 黄 Moderate, 蓝 Minor), then a warning's usual Expected/Likely.
_SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
_URGENCIES = ("Expected", "Immediate", "Future", "Past", "Unknown")
_CERTAINTIES = ("Likely", "Observed", "Possible", "Unlikely", "Unknown")
_NATURAL_SEVERITY = {Grade.I: "Extreme", Grade.II: "Severe", Grade.III: "Moderate", Grade.IV: "Minor"}


class CapMapping(Model):
    """The tables that turn CAP fields into Pingan's taxonomy; see the module docstring for the defaults."""

    hazard_rules: tuple[HazardRule, ...] = DEFAULT_HAZARD_RULES
    category_fallbacks: dict[str, HazardTarget] = Field(default_factory=lambda: dict(DEFAULT_CATEGORY_FALLBACKS))
    default_target: HazardTarget = _t(_O, _GENERAL)
    grade_rules: tuple[GradeRule, ...] = DEFAULT_GRADE_RULES
    default_grade: Grade = Grade.IV
    colours: dict[Grade, WarningColour] = Field(default_factory=lambda: dict(DEFAULT_COLOURS))
    # A message the EAS/IPAWS world sends as status Actual but which is a test: a Required Monthly/Weekly Test,
    # a National Periodic Test, a practice/demo. It must never become an actual incident.
    test_event_codes: frozenset[str] = frozenset({"RMT", "RWT", "NPT", "DMO"})
    test_event_keywords: tuple[str, ...] = ("required monthly test", "required weekly test",
                                            "national periodic test")
    max_parameter_labels: int = Field(default=40, ge=0, le=200)
    event_names: dict[str, HazardTarget] = Field(
        default_factory=_event_names, description="Exact <event> names (casefolded) -> target, from cap_terms")

    def classify(self, infos: list[InfoFacts]) -> HazardTarget:
        """Category/subtype/hazard for a message whose <info>s are given most-preferred first."""
        for info in infos:
            for rule in self.hazard_rules:
                if rule.matches(info.categories, info.event, info.event_codes):
                    return rule.target
        for info in infos:
            if (named := self.event_names.get(info.event.strip().casefold())) is not None:
                return named
        for cap_category in infos[0].categories if infos else ():
            if cap_category in self.category_fallbacks:
                return self.category_fallbacks[cap_category]
        return self.default_target

    def grade(self, severity: str | None, urgency: str | None, certainty: str | None) -> Grade:
        for rule in self.grade_rules:
            if (severity in rule.severity
                    and (rule.urgency is None or urgency in rule.urgency)
                    and (rule.certainty is None or certainty in rule.certainty)):
                return rule.grade
        return self.default_grade

    def colour(self, grade: Grade, category: Category) -> WarningColour | None:
        # Warning colours belong to natural, accident and public-health events (IncidentReport enforces it).
        if category in (Category.social_security, Category.other):
            return None
        return self.colours.get(grade)

    def cap_grade_terms(self, grade: Grade) -> tuple[str, str, str]:
        """(severity, urgency, certainty) that these grade rules map back to `grade`: the inverse, for export."""
        return _grade_terms(self.grade_rules, self.default_grade, grade)

    def cap_event(self, category: Category, subtype: Subtype, hazard: str | None = None) -> tuple[str, str, str]:
        """(CAP category, event zh, event en) that classify() reads back as this category and subtype (and hazard,
        when one of the hazard rules names it): the inverse, for export."""
        terms = SUBTYPE_TERMS.get((category, subtype)) or SUBTYPE_TERMS[(Category.other, Subtype.general)]
        if hazard is not None:
            for rule in self.hazard_rules:
                target = rule.target
                if (target.category, target.subtype, target.hazard) == (category, subtype, hazard):
                    zh = next((k for k in rule.keywords if _CJK.match(k)), None)
                    if zh is not None:
                        return terms.cap_category, zh, hazard_event_en(hazard)
        return terms.cap_category, terms.event_zh, terms.event_en

    def hazard_in(self, texts: list[str], category: Category, subtype: Subtype) -> str | None:
        """The hazard a release's own words name (台风 in "台风橙色预警"), if a hazard rule of this category and subtype
        matches them; export names the event after it."""
        for text in texts:
            for rule in self.hazard_rules:
                target = rule.target
                if target.hazard and (target.category, target.subtype) == (category, subtype) \
                        and rule.matches([], text, []):
                    return target.hazard
        return None

    def is_test_event(self, event: str, event_codes: list[str]) -> bool:
        folded = event.casefold()
        if any(k in folded for k in self.test_event_keywords):
            return True
        return any(code.strip().upper() in self.test_event_codes for code in event_codes)


@cache
def _grade_terms(rules: tuple[GradeRule, ...], default: Grade, grade: Grade) -> tuple[str, str, str]:
    def forward(severity: str, urgency: str, certainty: str) -> Grade:
        for rule in rules:
            if (severity in rule.severity and (rule.urgency is None or urgency in rule.urgency)
                    and (rule.certainty is None or certainty in rule.certainty)):
                return rule.grade
        return default

    natural = _NATURAL_SEVERITY[grade]
    for severity in (natural, *(s for s in _SEVERITIES if s != natural)):
        for urgency in _URGENCIES:
            for certainty in _CERTAINTIES:
                if forward(severity, urgency, certainty) is grade:
                    return severity, urgency, certainty
    raise ValueError(f"no CAP severity, urgency and certainty map to grade {grade.value}")


__all__ = ["DEFAULT_MAPPING", "CapMapping", "GradeRule", "HazardRule", "HazardTarget", "InfoFacts", "SubtypeTerms"]

DEFAULT_MAPPING = CapMapping()
