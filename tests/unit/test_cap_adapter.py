"""parse_cap against every real CAP sample in /work/shared/samples/cap, and the XXE attack made to bite.

The samples are read where they are (never copied into the project); the tests skip when they are absent.
Expectations for the INVALID-* and ATTACK-* files follow SOURCES.txt in that directory.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

from pingan.schemas.adapters.cap import cap_dedup_key, parse_cap
from pingan.schemas.adapters.cap_rules import CapValidationError
from pingan.schemas.adapters.cap_xml import CAP12_NS, xsd_errors
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.events import RawKind
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source, Subtype, WarningColour

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "cap"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"CAP samples not found at {SAMPLES}")


def _sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "SOURCES.txt")


def _is_bad(path: Path) -> bool:
    return path.name.startswith(("INVALID-", "ATTACK-"))


GOOD = [p for p in _sample_files() if not _is_bad(p)]
BAD = [p for p in _sample_files() if _is_bad(p)]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def edited(name: str, *replacements: tuple[str, str]) -> bytes:
    """A real sample with small edits: a case the real ones lack. Every edit must apply."""
    doc = sample(name).decode("utf-8")
    for old, new in replacements:
        assert old in doc, f"{old!r} not in {name}"
        doc = doc.replace(old, new)
    return doc.encode("utf-8")


def parse_one(data: bytes, name: str = "body"):
    items = parse_cap(data, source_name=name)
    assert len(items) == 1
    return items[0]


# -- every sample -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_valid_sample_parses(path: Path) -> None:
    data = path.read_bytes()
    items = parse_cap(data, source_name=path.name)
    assert len(items) >= 1
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    ns = etree.QName(root).namespace
    msg_type = root.findtext(f"{{{ns}}}msgType")
    for item in items:
        report = item.report
        assert report.source is Source.cap
        assert item.kind is {"Alert": RawKind.report, "Update": RawKind.update, "Cancel": RawKind.close}[msg_type]
        assert report.title
        assert isinstance(report.grade, Grade)
        if root.findtext(f"{{{ns}}}status") != "Actual":
            assert report.status is not IncidentStatus.actual
        assert (report.warning_colour is None) == (report.category in (Category.social_security, Category.other))
        assert report.dedup_key and report.dedup_key.startswith("cap:")
        assert item.source_key == f"cap:{root.findtext(f'{{{ns}}}sender')}:{root.findtext(f'{{{ns}}}identifier')}:" \
                                  f"{root.findtext(f'{{{ns}}}sent')}"
        for key in ("cap_identifier", "cap_sender", "cap_msgtype", "cap_status", "cap_scope"):
            assert report.labels[key]
        assert len(report.attachments) == len(root.findall(f"{{{ns}}}info"))
        assert all(a.kind == "cap_info" for a in report.attachments)
        assert report.occurred_at is not None and report.occurred_at.tzinfo is not None


# What SOURCES.txt says is wrong with each bad file: (field, line, substrings of the message).
REJECTIONS: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "ATTACK-xxe-external-entities.cap": ("DOCTYPE", 3, ("DOCTYPE", "XXE")),
    "INVALID-ca-ec-empty-references.cap": ("alert.references", 12, ("references is empty",)),
    "INVALID-missing-scope.cap": ("alert.scope", 2, ("required element <scope> is missing",)),
    # Its empty <references></references> on an Alert is accepted as none (XSD-valid, issue #12); the rest is not.
    "INVALID-us-nws-flood-empty-polygon.cap": ("alert.info[0].urgency", 17, ("polygon[0]",)),
    "INVALID-wrong-namespace-zh.cap": ("alert", 2, ("urn:oasis:names:tc:emergency:alerts:1.2", "is not CAP")),
}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_invalid_or_attack_sample_is_rejected(path: Path) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_cap(path.read_bytes(), source_name=path.name)
    error = caught.value
    assert error.source == path.name
    if path.name in REJECTIONS:  # a new bad sample only has to be rejected until someone writes down why
        field, line, words = REJECTIONS[path.name]
        assert error.field == field
        assert error.line == line
        for word in words:
            assert word in str(error)


def test_empty_references_is_xsd_valid_and_still_rejected() -> None:
    data = sample("INVALID-ca-ec-empty-references.cap")
    root = etree.fromstring(data)
    assert xsd_errors(root, CAP12_NS) == []  # SOURCES.txt: XSD validation alone is not enough
    with pytest.raises(CapValidationError) as caught:
        parse_cap(data)
    assert [p.field for p in caught.value.problems] == ["alert.references"]


def test_nws_flood_reports_the_broken_polygon_and_tolerates_the_empty_one() -> None:
    with pytest.raises(CapValidationError) as caught:
        parse_cap(sample("INVALID-us-nws-flood-empty-polygon.cap"))
    problems = {p.field: p for p in caught.value.problems}
    # The empty <references></references> of this Alert is read as none (XSD-valid): not among the problems.
    assert list(problems) == ["alert.info[0].urgency", "alert.info[0].severity",
                              "alert.info[0].certainty", "alert.info[0].area[0].polygon[0]"]
    polygon = problems["alert.info[0].area[0].polygon[0]"]
    assert "'+40.85,-118.09,'" in polygon.message and polygon.line == 66
    # The empty <polygon></polygon> after it is not a problem: us-nws-blizzard-warning.xml has one and is valid.
    assert "alert.info[0].area[0].polygon[1]" not in problems
    assert caught.value.as_dict()["problems"][3]["field"] == "alert.info[0].area[0].polygon[0]"


# -- specific samples -------------------------------------------------------------------------------------------


def test_tsunami_warning_update() -> None:
    item = parse_one(sample("us-wcatwc-tsunami-warning-update.cap"))
    r = item.report
    assert item.kind is RawKind.update
    assert (r.category, r.subtype, r.hazard) == (Category.natural_disaster, Subtype.marine, "tsunami")
    assert (r.grade, r.warning_colour) == (Grade.I, WarningColour.red)  # Extreme, Immediate, Likely
    assert r.dedup_key == "cap:PAAQ:PAAQ-1-lqw6d6"
    assert r.location.area_code == "AKZ185"
    assert r.labels["EventPreliminaryMagnitude"] == "7.1"
    assert r.labels["predictedArrivalTime"].count("CAP-TSU") > 1  # repeated parameters keep every value


def test_tsunami_cancellation_points_at_the_first_referenced_message() -> None:
    r = parse_one(sample("us-ntwc-tsunami-cancellation.xml")).report
    assert r.hazard == "tsunami"
    assert r.dedup_key == cap_dedup_key("wcatwc@noaa.gov", "PAAQ-1-mg5a94")


def test_earthquake_update_joins_the_original_alert() -> None:
    update = parse_one(sample("oasis-cap12-A3-earthquake-update.xml"))
    assert update.kind is RawKind.update
    assert (update.report.subtype, update.report.grade) == (Subtype.earthquake, Grade.IV)
    assert (update.report.location.lat, update.report.location.lon) == (32.9525, -115.5527)
    # The original it references is not among the samples: derive it (Alert, no references).
    original = parse_one(edited(
        "oasis-cap12-A3-earthquake-update.xml",
        ("<identifier>TRI13970876.2</identifier>", "<identifier>TRI13970876.1</identifier>"),
        ("<sent>2003-06-11T20:56:00-07:00</sent>", "<sent>2003-06-11T20:30:00-07:00</sent>"),
        ("<msgType>Update</msgType>", "<msgType>Alert</msgType>"),
        ("<references>trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00</references>", ""),
    ))
    assert original.kind is RawKind.report
    assert original.report.dedup_key == update.report.dedup_key == "cap:trinet@caltech.edu:TRI13970876.1"
    assert original.source_key != update.source_key


@pytest.mark.parametrize("name", ["athoc-cancel-no-info.cap", "us-ipaws-cancel-no-info.xml"])
def test_cancel_without_info_closes_the_referenced_incident(name: str) -> None:
    item = parse_one(sample(name))
    root = etree.fromstring(sample(name))
    sender, identifier, _ = root.findtext(f"{{{CAP12_NS}}}references").split(",")
    assert item.kind is RawKind.close
    assert item.report.dedup_key == cap_dedup_key(sender, identifier)
    assert item.report.title == f"CAP Cancel {root.findtext(f'{{{CAP12_NS}}}identifier')}"
    assert item.report.attachments == []


def test_cancel_dedup_key_equals_the_alerts() -> None:
    cancel = parse_one(sample("athoc-cancel-no-info.cap"))
    alert = parse_one(edited(
        "athoc-cancel-no-info.cap",
        ("<identifier>1017033100951096-517189320160225203219800_Cancel</identifier>",
         "<identifier>1017033100951096-517189320160225203219800</identifier>"),
        ("<msgType>Cancel</msgType>", "<msgType>Alert</msgType>"),
        ("<references>AtHoc,1017033100951096-517189320160225203219800,2016-02-25T12:32:19-08:00</references>", ""),
    ))
    assert alert.kind is RawKind.report and alert.report.dedup_key == cancel.report.dedup_key


@pytest.mark.parametrize("name, kind, status", [
    ("ph-pagasa-tropical-cyclone-TEST.cap", RawKind.report, IncidentStatus.test),
    ("mx-smn-tropical-cyclone-update-es.xml", RawKind.update, IncidentStatus.actual),
])
def test_tropical_cyclones_are_typhoons(name: str, kind: RawKind, status: IncidentStatus) -> None:
    item = parse_one(sample(name))
    r = item.report
    assert (item.kind, r.status) == (kind, status)
    assert (r.category, r.subtype, r.hazard) == (Category.natural_disaster, Subtype.meteorological, "typhoon")


def test_pagasa_test_message_keeps_its_polygon_centroid() -> None:
    r = parse_one(sample("ph-pagasa-tropical-cyclone-TEST.cap")).report
    assert "Typhoon Paeng" in r.title
    assert (r.location.lat, r.location.lon) == pytest.approx((12.75, 121.25))


def test_zh_reservoir_discharge_gets_the_zh_title() -> None:
    r = parse_one(sample("tw-wra-reservoir-discharge-zh.cap")).report  # UTF-8 with a BOM
    assert r.title == "明德水庫:洩洪中"
    assert r.description.startswith("水利署訊")
    assert (r.category, r.subtype, r.hazard) == (Category.natural_disaster, Subtype.flood_drought,
                                                 "reservoir_discharge")
    assert (r.grade, r.warning_colour) == (Grade.III, WarningColour.yellow)  # Moderate
    assert (r.location.area_name, r.location.area_code) == ("苗栗縣頭屋鄉", "1000512")
    assert r.reporter is not None and r.reporter.organisation == "水利署"
    assert r.labels["alert_color"] == "紅色" and r.labels["cap_language"] == "zh-tw"


def test_zh_info_wins_over_an_earlier_english_one() -> None:
    en_info = ("<info><language>en-US</language><category>Infra</category><event>Reservoir discharge</event>"
               "<urgency>Future</urgency><severity>Moderate</severity><certainty>Observed</certainty>"
               "<headline>Mingde Reservoir: discharging</headline></info>\n  <info>")
    r = parse_one(edited("tw-wra-reservoir-discharge-zh.cap", ("<info>", en_info))).report
    assert r.title == "明德水庫:洩洪中"
    assert [a.lang for a in r.attachments] == ["en-US", "zh-tw"]


def test_en_fr_update_keeps_both_infos() -> None:
    item = parse_one(sample("ca-ec-thunderstorm-update-en-fr.cap"))
    r = item.report
    assert item.kind is RawKind.update
    assert r.dedup_key == "cap:cap@ec.gc.ca:2.49.0.1.124.a3f342a4.2012"
    assert r.title == "severe thunderstorm watch"
    assert [(a.lang, a.title) for a in r.attachments] == [("en-CA", "severe thunderstorm watch"),
                                                          ("fr-CA", "veille d'orages violents")]
    fr = r.attachments[1]
    assert fr.data["event"] == "orages" and "comté d'Essex" in fr.data["areaDesc"]
    assert fr.text is not None and "épreuve" in fr.text
    assert r.hazard == "thunderstorm"


def test_amber_alert_en_es_is_social_security_without_colour() -> None:
    r = parse_one(sample("oasis-cap12-A4-amber-alert-en-es.xml")).report
    assert (r.category, r.hazard, r.warning_colour) == (Category.social_security, "child_abduction", None)
    assert r.title == "Amber Alert in Los Angeles County"
    assert [a.lang for a in r.attachments] == ["en-US", "es-US"]


def test_ipaws_required_monthly_test_is_never_actual() -> None:
    r = parse_one(sample("us-ipaws-required-monthly-test.xml")).report
    assert r.labels["cap_status"] == "Actual"  # IPAWS sends it as Actual; the SAME code RMT says test
    assert r.status is IncidentStatus.test
    assert all("derefUri" not in str(a.data) for a in r.attachments)  # the embedded mp3 stays out


def test_iso_8859_1_sample_keeps_its_accents() -> None:
    data = sample("us-usgs-earthquake-iso8859-1.cap")
    assert b"Usulut\xe1n" in data  # really Latin-1 on disk, not UTF-8
    r = parse_one(data).report
    assert r.title.startswith("EQ 4.6 Usulután, Usulután, El Salvador")
    assert "Usulután" in r.description
    assert (r.subtype, r.location.lat, r.location.lon) == (Subtype.earthquake, 12.747, -88.783)
    assert r.occurred_at is not None and r.occurred_at.isoformat() == "2012-10-14T22:40:56+00:00"  # onset


@pytest.mark.parametrize("name", ["cap11-severe-thunderstorm.xml", "minimal-no-info.cap",
                                  "us-nws-blizzard-warning.xml", "us-nws-flash-flood-watch.cap"])
def test_cap_1_1_messages_parse(name: str) -> None:
    r = parse_one(sample(name)).report
    assert r.labels["cap_version"] == "1.1"


def test_message_without_info_uses_the_default_target() -> None:
    r = parse_one(sample("minimal-no-info.cap")).report
    # No <info>, so nothing says what happened: other/general (the catch-all), never a guessed hazard.
    assert (r.category, r.subtype, r.hazard, r.grade) == (Category.other, Subtype.general, None, Grade.IV)
    assert r.title.startswith("CAP Alert USGS-earthquakes-")


def test_fire_with_circle_and_prefixed_elements() -> None:
    r = parse_one(sample("au-nsw-rfs-fire-circle.cap")).report  # cap: prefixed, categories Fire + Met
    assert (r.category, r.subtype) == (Category.accident_disaster, Subtype.fire)
    assert (r.location.lat, r.location.lon, r.location.area_code) == (-35.3888, 147.0598, "AU-NSW")


# -- XXE: the attack, made to bite ------------------------------------------------------------------------------


@dataclass
class _Server:
    url: str
    requests: list[str]


@pytest.fixture
def http_server() -> Iterator[_Server]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.path)
            body = b'<!ENTITY % send "<!ENTITY leak SYSTEM \'file:///etc/hostname\'>">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Server(f"http://127.0.0.1:{server.server_port}", requests)
    server.shutdown()
    server.server_close()
    thread.join(5)


def _attack(server_url: str, secret: Path | None = None, encoding: str = "utf-8") -> bytes:
    """The real ATTACK document pointed at our server (and a secret file), otherwise a valid CAP message."""
    doc = sample("ATTACK-xxe-external-entities.cap").decode("utf-8")
    doc = doc.replace("http://http://localhost:8080", server_url).replace("http://localhost:8080", server_url)
    start, end = doc.index("<x xmlns:xi"), doc.index(">a</y>") + len(">a</y>")
    doc = doc[:start] + doc[end:]  # without <x>/<y>, only the entities stand between it and acceptance
    if secret is not None:
        doc = doc.replace(f'<!ENTITY xxe SYSTEM "{server_url}/payload3">', f'<!ENTITY xxe SYSTEM "{secret.as_uri()}">')
    doc = doc.replace('encoding="utf-8"', f'encoding="{encoding}"')
    return doc.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # UTF-16 gets past the byte scan, to libxml2
def test_xxe_reads_no_local_file(tmp_path: Path, http_server: _Server, encoding: str) -> None:
    marker = "PINGAN-XXE-MARKER-7f3a9c"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    data = _attack(http_server.url, secret, encoding)
    # Control: a parser that resolves entities does read the file, so this test can fail. (It may also ask our
    # local server for the DTDs; that is the other test's business.)
    unsafe = etree.fromstring(data, etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False))
    assert marker in etree.tostring(unsafe, encoding="unicode")

    with pytest.raises(IntakeError) as caught:
        parse_cap(data, source_name="attack")
    assert caught.value.field == "DOCTYPE"
    assert marker not in str(caught.value) and marker not in repr(caught.value.as_dict())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_xxe_makes_no_network_call(http_server: _Server, encoding: str) -> None:
    with pytest.raises(IntakeError, match="DOCTYPE"):
        parse_cap(_attack(http_server.url, encoding=encoding))
    assert http_server.requests == []


def test_real_attack_file_is_rejected_before_anything_is_resolved() -> None:
    with pytest.raises(IntakeError) as caught:
        parse_cap(sample("ATTACK-xxe-external-entities.cap"))
    assert (caught.value.field, caught.value.line, caught.value.col) == ("DOCTYPE", 3, 1)


def test_doctype_behind_a_comment_that_fools_the_byte_scan_is_still_rejected(tmp_path: Path,
                                                                             http_server: _Server) -> None:
    # "<a" inside a comment ends the prolog scan early; libxml2 (hardened) and the docinfo check still stop it.
    marker = "PINGAN-XXE-MARKER-comment"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    data = _attack(http_server.url, secret).replace(b"<!DOCTYPE", b"<!-- <a> --><!DOCTYPE", 1)
    with pytest.raises(IntakeError) as caught:
        parse_cap(data)
    assert caught.value.field == "DOCTYPE" and marker not in str(caught.value)
    assert http_server.requests == []
