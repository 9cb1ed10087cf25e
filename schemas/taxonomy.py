"""The incident taxonomy of the national overall contingency plan (国家突发公共事件总体应急预案)."""

from enum import StrEnum


class Category(StrEnum):
    natural_disaster = "natural_disaster"  # 自然灾害
    accident_disaster = "accident_disaster"  # 事故灾难
    public_health = "public_health"  # 公共卫生事件
    social_security = "social_security"  # 社会安全事件
    # 其他突发事件: what a source could not place in the four (a CAP alert of category Other, an event no table
    # knows). Never a guess at a hazard; the catch-all plan (通用突发事件) takes it to the duty room.
    other = "other"


class Subtype(StrEnum):
    # natural_disaster
    flood_drought = "flood_drought"  # 水旱灾害
    meteorological = "meteorological"  # 气象灾害 (typhoon, rainstorm, blizzard…: see Incident.hazard)
    earthquake = "earthquake"  # 地震灾害
    geological = "geological"  # 地质灾害
    marine = "marine"  # 海洋灾害 (storm surge…)
    forest_fire = "forest_fire"  # 森林草原火灾
    # accident_disaster
    industrial_safety = "industrial_safety"  # 工矿商贸企业安全事故
    hazardous_chemicals = "hazardous_chemicals"  # 危险化学品
    transport = "transport"  # 交通运输事故
    public_facility = "public_facility"  # 公共设施和设备事故
    environmental_pollution = "environmental_pollution"  # 环境污染和生态破坏
    fire = "fire"  # 火灾
    # public_health
    infectious_disease = "infectious_disease"  # 传染病疫情
    unexplained_illness = "unexplained_illness"  # 群体性不明原因疾病
    food_occupational_poisoning = "food_occupational_poisoning"  # 食品安全和职业危害
    animal_epidemic = "animal_epidemic"  # 动物疫情
    # social_security
    terrorist_attack = "terrorist_attack"  # 恐怖袭击事件
    mass_incident = "mass_incident"  # 群体性事件
    economic_security = "economic_security"  # 经济安全事件
    foreign_related = "foreign_related"  # 涉外突发事件
    cyber = "cyber"  # 网络与信息安全事件
    # other
    general = "general"  # 未分类: the source said what happened, not which kind of event it is
    # 待甄别: a citizen's text that reads as no report (a greeting, a test, noise, a lone weak word), for the duty
    # room to look at. Not `general`: nothing is known to have happened, so it must not join a general incident.
    unclassified = "unclassified"
    # 趋势预警 (issue 18): no one reported an incident; the count of reports of one kind in one area rose beyond its
    # baseline (pingan.handlers.trends). A signal for the duty room to look into, carrying its evidence, so `other`.
    trend_warning = "trend_warning"
    # Not in the 2006 overall plan's short list, but a subtype of 社会安全事件 in GB/T 35561-2017 (突发事件分类与编码):
    # violent crime against the public (持刀伤人, 驾车冲撞人群, 纵火, 投毒) that is not known to be terrorism.
    criminal_case = "criminal_case"  # 刑事案件


SUBTYPES_BY_CATEGORY: dict[Category, frozenset[Subtype]] = {
    Category.natural_disaster: frozenset(
        {
            Subtype.flood_drought,
            Subtype.meteorological,
            Subtype.earthquake,
            Subtype.geological,
            Subtype.marine,
            Subtype.forest_fire,
        }
    ),
    Category.accident_disaster: frozenset(
        {
            Subtype.industrial_safety,
            Subtype.hazardous_chemicals,
            Subtype.transport,
            Subtype.public_facility,
            Subtype.environmental_pollution,
            Subtype.fire,
        }
    ),
    Category.public_health: frozenset(
        {
            Subtype.infectious_disease,
            Subtype.unexplained_illness,
            Subtype.food_occupational_poisoning,
            Subtype.animal_epidemic,
        }
    ),
    Category.social_security: frozenset(
        {
            Subtype.terrorist_attack,
            Subtype.mass_incident,
            Subtype.economic_security,
            Subtype.foreign_related,
            Subtype.cyber,
            Subtype.criminal_case,
        }
    ),
    Category.other: frozenset({Subtype.general, Subtype.unclassified, Subtype.trend_warning}),
}


class Grade(StrEnum):
    """Event grade: I is the most severe. It decides who commands and who is told."""

    I = "I"  # noqa: E741 - 特别重大 (particularly serious)
    II = "II"  # 重大 (serious)
    III = "III"  # 较大 (relatively serious)
    IV = "IV"  # 一般 (general)


GRADE_NAMES: dict[Grade, dict[str, str]] = {
    Grade.I: {"zh": "特别重大", "en": "particularly serious"},
    Grade.II: {"zh": "重大", "en": "serious"},
    Grade.III: {"zh": "较大", "en": "relatively serious"},
    Grade.IV: {"zh": "一般", "en": "general"},
}


class WarningColour(StrEnum):
    """Early-warning colour, used by the first three categories only."""

    red = "red"
    orange = "orange"
    yellow = "yellow"
    blue = "blue"


class Source(StrEnum):
    hotline_sms = "hotline_sms"
    hotline_voice = "hotline_voice"
    alertmanager = "alertmanager"
    cap = "cap"
    api = "api"
    cli = "cli"
    drill = "drill"
    trend = "trend"  # the trend early-warning stage (streams/trends.py): raised from counts, not reported


class IncidentStatus(StrEnum):
    """As CAP's status: only `actual` incidents are real; the others must never be treated as real."""

    actual = "actual"
    exercise = "exercise"
    test = "test"


class IncidentState(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    closed = "closed"
