"""The CAP mapping tables, and the CAP rules checked on variants of a real message (cases the samples lack).

Split from test_cap_adapter.py to keep each module short; the rule cases start from the OASIS CAP 1.2
Appendix A.2 sample and change one thing each.
"""

from pathlib import Path

import pytest

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_mapping import (
    DEFAULT_MAPPING,
    CapMapping,
    HazardRule,
    HazardTarget,
    InfoFacts,
)
from pingan.schemas.adapters.cap_rules import CapValidationError
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype, WarningColour

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "cap"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"CAP samples not found at {SAMPLES}")

N, A, P, S = Category.natural_disaster, Category.accident_disaster, Category.public_health, Category.social_security
OTHER = Category.other


def classify(categories: str, event: str, codes: tuple[str, ...] = ()) -> tuple[Category, Subtype, str | None]:
    t = DEFAULT_MAPPING.classify([InfoFacts(categories=categories.split(), event=event, event_codes=list(codes))])
    return t.category, t.subtype, t.hazard


@pytest.mark.parametrize("categories, event, expected", [
    ("Met", "Typhoon Warning", (N, Subtype.meteorological, "typhoon")),
    ("Met", "Hurricane Warning", (N, Subtype.meteorological, "typhoon")),
    ("Met", "Tropical Cyclone Alert", (N, Subtype.meteorological, "typhoon")),
    ("Met", "台风红色预警", (N, Subtype.meteorological, "typhoon")),
    ("Met", "暴雨橙色预警", (N, Subtype.meteorological, "rainstorm")),
    ("Met", "Flood Warning", (N, Subtype.flood_drought, "flood")),
    ("Met", "洪水预警", (N, Subtype.flood_drought, "flood")),
    ("Met", "Flash Flood Watch", (N, Subtype.flood_drought, "flash_flood")),
    ("Met", "山洪灾害预警", (N, Subtype.flood_drought, "flash_flood")),
    ("Infra", "水库泄洪", (N, Subtype.flood_drought, "reservoir_discharge")),
    ("Geo", "Earthquake", (N, Subtype.earthquake, "earthquake")),
    ("Geo", "地震速报", (N, Subtype.earthquake, "earthquake")),
    ("Geo", "Tsunami Warning", (N, Subtype.marine, "tsunami")),
    ("Geo", "Landslide", (N, Subtype.geological, "landslide")),
    ("Fire", "Fire", (A, Subtype.fire, None)),
    ("Fire", "Bushfire", (N, Subtype.forest_fire, "wildfire")),
    ("Fire", "Wildfire", (N, Subtype.forest_fire, "wildfire")),
    ("CBRNE", "Chemical release", (A, Subtype.hazardous_chemicals, "chemical_release")),
    ("CBRNE", "Incident", (A, Subtype.hazardous_chemicals, None)),
    ("Health", "Public health notice", (OTHER, Subtype.general, None)),  # a blood-stock appeal is Health too
    ("Security", "Terrorist threat", (S, Subtype.terrorist_attack, "terrorism")),
    ("Security", "Police activity", (OTHER, Subtype.general, None)),  # not a mass incident: no guess
    ("Met", "SEVERE THUNDERSTORM", (N, Subtype.meteorological, "thunderstorm")),
    ("Met", "Blizzard Warning", (N, Subtype.meteorological, "blizzard")),
    ("Met", "Wind Chill Warning", (N, Subtype.meteorological, "cold_wave")),
    ("Met", "Something new", (N, Subtype.meteorological, None)),
    ("Safety", "Industrial dust incident", (OTHER, Subtype.general, None)),  # "dust" is not a word start
    ("Other", "Other", (OTHER, Subtype.general, None)),
    ("Other", "Blood stock notice", (OTHER, Subtype.general, None)),
    ("Met", "Heat Advisory", (N, Subtype.meteorological, "heat_wave")),
    ("Met", "Dense Fog Advisory", (N, Subtype.meteorological, "fog")),
    ("Met", "Gale Warning", (N, Subtype.meteorological, "gale")),
    ("Security", "防空演習", (OTHER, Subtype.general, "air_raid")),  # once the crowd-crush plan
    ("Safety", "Air Raid Drill", (OTHER, Subtype.general, "air_raid")),
    ("Rescue", "Search and rescue", (OTHER, Subtype.general, None)),
])
def test_default_hazard_table(categories: str, event: str, expected: tuple) -> None:
    assert classify(categories, event) == expected


def test_event_codes_classify_when_the_words_do_not() -> None:
    assert classify("Geo", "Aviso", ("EQW",)) == (N, Subtype.earthquake, "earthquake")


def test_later_infos_classify_when_the_chosen_one_does_not() -> None:
    infos = [InfoFacts(categories=["Met"], event="Veðurviðvörun: Vindur"),
             InfoFacts(categories=["Met"], event="Weather Warning: Wind")]
    assert DEFAULT_MAPPING.classify(infos).hazard == "gale"
    assert DEFAULT_MAPPING.classify([]) == DEFAULT_MAPPING.default_target


@pytest.mark.parametrize("severity, urgency, certainty, grade", [
    ("Extreme", "Immediate", "Observed", Grade.I),
    ("Extreme", "Immediate", "Likely", Grade.I),
    ("Extreme", "Immediate", "Possible", Grade.II),
    ("Extreme", "Expected", "Observed", Grade.II),
    ("Severe", "Immediate", "Unlikely", Grade.II),
    ("Severe", "Expected", "Observed", Grade.III),
    ("Moderate", "Immediate", "Observed", Grade.III),
    ("Minor", "Immediate", "Observed", Grade.IV),
    ("Unknown", "Unknown", "Unknown", Grade.IV),
    (None, None, None, Grade.IV),
])
def test_default_grade_table(severity: str | None, urgency: str | None, certainty: str | None,
                             grade: Grade) -> None:
    assert DEFAULT_MAPPING.grade(severity, urgency, certainty) is grade


def test_colours_follow_the_grade_except_for_social_security() -> None:
    expected = {Grade.I: WarningColour.red, Grade.II: WarningColour.orange, Grade.III: WarningColour.yellow,
                Grade.IV: WarningColour.blue}
    for grade, colour in expected.items():
        assert DEFAULT_MAPPING.colour(grade, N) is colour
        assert DEFAULT_MAPPING.colour(grade, S) is None


def test_test_events() -> None:
    assert DEFAULT_MAPPING.is_test_event("Required Monthly Test", [])
    assert DEFAULT_MAPPING.is_test_event("Anything", ["RWT"])
    assert not DEFAULT_MAPPING.is_test_event("Tsunami Warning", ["TSW"])


def test_a_target_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="not in category"):
        HazardTarget(category=S, subtype=Subtype.fire)


# -- the rules, on variants of a real message -------------------------------------------------------------------


def a2(*replacements: tuple[str, str]) -> bytes:
    doc = (SAMPLES / "oasis-cap12-A2-severe-thunderstorm.xml").read_text("utf-8")
    for old, new in replacements:
        assert old in doc
        doc = doc.replace(old, new)
    return doc.encode("utf-8")


POLYGON = "<polygon>38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14</polygon>"


def rejected(data: bytes) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        parse_cap(data, source_name="a2.xml")
    assert caught.value.source == "a2.xml"
    return caught.value


@needs_samples
@pytest.mark.parametrize("edit, field, line, words", [
    ((POLYGON, "<polygon>38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89</polygon>"),
     "alert.info[0].area[0].polygon[0]", 32, "must be closed"),
    ((POLYGON, "<polygon>38.47,-120.14 38.34,-119.95 38.47,-120.14</polygon>"),
     "alert.info[0].area[0].polygon[0]", 32, "at least 4 coordinate pairs"),
    ((POLYGON, "<polygon>98.47,-120.14 38.34,-119.95 38.52,-119.74 98.47,-120.14</polygon>"),
     "alert.info[0].area[0].polygon[0]", 32, "latitude 98.47"),
    ((POLYGON, "<circle>38.47 -120.14 10</circle>"), "alert.info[0].area[0].circle[0]", 32, "'lat,lon radius'"),
    ((POLYGON, "<circle>38.47,-120.14 -3</circle>"), "alert.info[0].area[0].circle[0]", 32, "radius"),
    (("<scope>Public</scope>", "<scope>Public</scope><references>KSTO@NWS.NOAA.GOV,KSTO1</references>"),
     "alert.references", 8, "is not 'sender,identifier,sent'"),
    (("<msgType>Alert</msgType>", "<msgType>Update</msgType>"), "alert.references", 7, "needs <references>"),
    (("<scope>Public</scope>", "<scope>Restricted</scope>"), "alert.restriction", 8, "needs a non-empty"),
    (("<scope>Public</scope>", "<scope>Private</scope>"), "alert.addresses", 8, "needs a non-empty"),
    (("<status>Actual</status>", "<status>Draft</status>"), "alert.status", 6, "Draft"),
    (("<msgType>Alert</msgType>", "<msgType>Ack</msgType>"), "alert.msgType", 7, "Ack"),
    (("<event>SEVERE THUNDERSTORM</event>", ""), "alert.info[0].event", 9, "<event> is missing"),
    (("<severity>Severe</severity>", "<severity>Bad</severity>"), "alert.info[0].severity", 14, "'Bad' is not one"),
    (("<identifier>KSTO1055887203</identifier>", "<identifier>KSTO 1055887203</identifier>"),
     "alert.identifier", 3, "spaces, commas"),
    # Past the rules, the schema: a time zone letter, and an element out of order.
    # A time with Z: said in words, not as the XSD's pattern (issue #12).
    (("<sent>2003-06-17T14:57:00-07:00</sent>", "<sent>2003-06-17T21:57:00Z</sent>"), "alert.sent", 5,
     "CAP times need an offset such as +08:00, not Z"),
    (("<urgency>Immediate</urgency>", "<urgency>Immediate</urgency><language>en</language>"),
     "alert.info[0].language", 13, "language"),
])
def test_rule_violations(edit: tuple[str, str], field: str, line: int, words: str) -> None:
    error = rejected(a2(edit))
    assert (error.field, error.line) == (field, line)
    assert words in error.message


@needs_samples
@pytest.mark.parametrize("cap_status, status", [("Exercise", IncidentStatus.exercise),
                                                ("System", IncidentStatus.test), ("Test", IncidentStatus.test)])
def test_statuses(cap_status: str, status: IncidentStatus) -> None:
    [item] = parse_cap(a2(("<status>Actual</status>", f"<status>{cap_status}</status>")))
    assert item.report.status is status


@needs_samples
def test_scoped_messages_with_their_lists_are_accepted() -> None:
    [item] = parse_cap(a2(("<scope>Public</scope>", "<scope>Private</scope><addresses>ops@example</addresses>")))
    assert item.report.labels["cap_scope"] == "Private"


@needs_samples
def test_cap11_resource_without_mime_type_is_valid_only_in_1_1() -> None:
    resource = "<resource><resourceDesc>map</resourceDesc></resource><area>"
    with pytest.raises(CapValidationError, match="mimeType"):
        parse_cap(a2(("<area>", resource)))
    v11 = a2(("<area>", resource), ("cap:1.2", "cap:1.1"))
    assert parse_cap(v11)[0].report.labels["cap_version"] == "1.1"


@needs_samples
def test_every_problem_is_listed() -> None:
    error = rejected(a2(("<scope>Public</scope>", ""), ("<event>SEVERE THUNDERSTORM</event>", ""),
                        (POLYGON, "<polygon>1,2 3,4</polygon>")))
    assert isinstance(error, CapValidationError)
    assert [p.field for p in error.problems] == ["alert.scope", "alert.info[0].event",
                                                 "alert.info[0].area[0].polygon[0]"]
    assert "2 more problem(s)" in str(error)


def test_not_xml_not_cap_and_not_bytes() -> None:
    with pytest.raises(IntakeError, match="not well-formed") as caught:
        parse_cap(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>\n<identifier>x</alert>")
    assert caught.value.line == 2 and caught.value.col is not None
    with pytest.raises(IntakeError, match="a CAP message is an <alert>"):
        parse_cap(b"<feed xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>")
    with pytest.raises(IntakeError, match="empty document"):
        parse_cap(b"  ")
    with pytest.raises(TypeError):
        parse_cap("<alert/>")  # type: ignore[arg-type]


@needs_samples
def test_a_custom_mapping_is_used() -> None:
    mapping = CapMapping(
        hazard_rules=(HazardRule(keywords=("thunderstorm",), target=HazardTarget(
            category=A, subtype=Subtype.public_facility, hazard="storm_damage")),),
        default_grade=Grade.I, grade_rules=(),
    )
    [item] = parse_cap(a2(), mapping)
    assert (item.report.subtype, item.report.hazard, item.report.grade) == (Subtype.public_facility, "storm_damage",
                                                                            Grade.I)
