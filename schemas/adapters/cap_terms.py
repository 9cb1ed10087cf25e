"""The CAP words of each category/subtype of Pingan's taxonomy: one table, read in both directions.

    SUBTYPE_TERMS: (category, subtype) -> CAP <category>, and the <event> name in zh-CN and en

Export (schemas/adapters/cap_out.py) writes a release's category and subtype as these words. Intake
(cap_mapping.CapMapping.classify) reads the same names back: an <event> that is exactly one of them (after the
hazard keyword rules, which come first, and before the CAP-category fallbacks) is that subtype. So a subtype the
keyword rules cannot name (经济安全事件, 刑事案件, 不明原因疾病…) still comes back as itself, and no second table can
drift from this one. tests/unit/test_cap_out.py sends every subtype and every grade through export and intake.

The names are chosen so that the keyword rules, which run first, either leave them alone or name the same subtype
(水旱灾害 / Flood and drought hits the "flood" rule: natural_disaster/flood_drought, hazard flood). The CAP
category of a subtype that has a fallback in cap_mapping.DEFAULT_CATEGORY_FALLBACKS is that fallback's key (Met,
Geo, Fire, CBRNE, Infra, Env, Transport); the test checks they agree.

The subtypes of PUBLISHED_AS_GENERAL have no row: `other/unclassified` (a citizen's text that reads as no report)
and `other/trend_warning` (a signal the office raised from its own counts) are the duty room's, never a public
warning's subject as such; export writes them as other/general. A new subtype must get a row or join that set
(the test fails until it does).
"""

from typing import NamedTuple

from pingan.schemas.taxonomy import Category, Subtype

PUBLISHED_AS_GENERAL = frozenset({Subtype.unclassified, Subtype.trend_warning})


class SubtypeTerms(NamedTuple):
    cap_category: str
    event_zh: str
    event_en: str


_N, _A, _P, _S, _O = (Category.natural_disaster, Category.accident_disaster, Category.public_health,
                      Category.social_security, Category.other)

SUBTYPE_TERMS: dict[tuple[Category, Subtype], SubtypeTerms] = {
    (_N, Subtype.flood_drought): SubtypeTerms("Met", "水旱灾害", "Flood and drought"),
    (_N, Subtype.meteorological): SubtypeTerms("Met", "气象灾害", "Meteorological hazard"),
    (_N, Subtype.earthquake): SubtypeTerms("Geo", "地震灾害", "Earthquake"),
    (_N, Subtype.geological): SubtypeTerms("Geo", "地质灾害", "Geological hazard"),
    (_N, Subtype.marine): SubtypeTerms("Met", "海洋灾害", "Marine hazard"),
    (_N, Subtype.forest_fire): SubtypeTerms("Fire", "森林草原火灾", "Forest and grassland fire"),
    (_A, Subtype.industrial_safety): SubtypeTerms("Safety", "工矿商贸安全事故", "Industrial accident"),
    (_A, Subtype.hazardous_chemicals): SubtypeTerms("CBRNE", "危险化学品事故", "Hazardous chemicals accident"),
    (_A, Subtype.transport): SubtypeTerms("Transport", "交通运输事故", "Transport accident"),
    (_A, Subtype.public_facility): SubtypeTerms("Infra", "公共设施和设备事故", "Public facility accident"),
    (_A, Subtype.environmental_pollution): SubtypeTerms("Env", "环境污染和生态破坏", "Environmental pollution"),
    (_A, Subtype.fire): SubtypeTerms("Fire", "火灾", "Fire"),
    (_P, Subtype.infectious_disease): SubtypeTerms("Health", "传染病疫情", "Infectious disease outbreak"),
    # Not 群体性不明原因疾病: 群体性 is the civil-disturbance keyword, and the rules run first.
    (_P, Subtype.unexplained_illness): SubtypeTerms("Health", "不明原因疾病", "Illness of unknown cause"),
    (_P, Subtype.food_occupational_poisoning): SubtypeTerms("Health", "食品安全和职业危害",
                                                            "Food safety and occupational hazard"),
    (_P, Subtype.animal_epidemic): SubtypeTerms("Health", "动物疫情", "Animal disease"),
    (_S, Subtype.terrorist_attack): SubtypeTerms("Security", "恐怖袭击事件", "Terrorist attack"),
    (_S, Subtype.mass_incident): SubtypeTerms("Security", "群体性事件", "Mass incident"),
    (_S, Subtype.economic_security): SubtypeTerms("Security", "经济安全事件", "Economic security incident"),
    (_S, Subtype.foreign_related): SubtypeTerms("Security", "涉外突发事件", "Foreign-related incident"),
    (_S, Subtype.cyber): SubtypeTerms("Security", "网络与信息安全事件", "Cyber and information security incident"),
    (_S, Subtype.criminal_case): SubtypeTerms("Security", "刑事案件", "Criminal case"),
    (_O, Subtype.general): SubtypeTerms("Other", "突发事件", "Emergency"),
}

# What a hazard of the keyword rules is called in English, where its first English keyword is a word stem or a
# synonym ("volcan", "radiolog", "wind"); the rest are the hazard's name with spaces.
HAZARD_EN: dict[str, str] = {"gale": "Gale", "radiological": "Radiological hazard", "volcano": "Volcano",
                             "terrorism": "Terrorism"}


def hazard_event_en(hazard: str) -> str:
    return HAZARD_EN.get(hazard) or hazard.replace("_", " ").capitalize()
