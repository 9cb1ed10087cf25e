"""Issue 17's first "done when", in one run of the whole stack: `pingan up` (tansu, worker, API) with the local
Twilio server. People subscribe and unsubscribe by signed SMS; a grade II typhoon reported over the API is drafted
by the public information officer, approved by a second person (the commander) and published over HTTP. The CAP
document the public feed links to validates against the OASIS XSD, passes capvalidator and reads back through
Pingan's own CAP intake as the same category and grade; every subscriber of the area gets one SMS, a non-subscriber
none, a number that sent 退订 none. An update is a CAP Update whose references name the first alert, and the
all-clear a Cancel. Unit and integration tests cover each part in more detail (test_cap_out, test_releases,
test_release_typhoon_sms, test_public_cap_workflow); this one shows the parts work together."""

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import capvalidator
import feedparser
import httpx
from lxml import etree

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_xml import CAP12_NS, xsd_errors
from tests.e2e.test_sms_commands import send_sms, twiml_message
from tests.fixtures.stack import Stack, person_token, wait_for
from tests.fixtures.twilio_server import FakeTwilio

NS = {"cap": CAP12_NS}
SUBSCRIBERS = {"+8613800001101": "订阅 唐家湾", "+8613800001102": "SUB Tangjiawan"}
QUITTER = "+8613800001103"  # subscribes, then sends 退订
STRANGER = "+8613800001104"  # never subscribes
PIO, COMMANDER = "xiang-yun", "huang-liping"  # the typhoon plan's public information officer and commander


def call(stack: Stack, token: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(stack.url + path, json=body or {}, headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
    assert response.status_code in (200, 201), (path, response.status_code, response.text)
    return response.json()


def publish(stack: Stack, incident_id: str, pio: str, commander: str, all_clear: bool = False) -> dict[str, Any]:
    """Draft (the PIO), approve (the commander: four eyes), publish (the PIO): the published release."""
    drafted = call(stack, pio, f"/v1/incidents/{incident_id}/releases", {"all_clear": all_clear})["release"]
    call(stack, commander, f"/v1/releases/{drafted['id']}/approve", {"revision": drafted["revision"]})
    published = call(stack, pio, f"/v1/releases/{drafted['id']}/publish", {"revision": drafted["revision"]})
    assert published["release"]["state"] == "published"
    return published["release"]


def feed_document(stack: Stack, identifier: str) -> etree._Element:
    """The release's CAP document as the public Atom feed links to it, checked against the XSD and capvalidator."""
    feed = feedparser.parse(httpx.get(stack.url + "/public/cap/feed.atom", timeout=30).content)
    assert not feed.bozo
    links = [link.href for entry in feed.entries for link in entry.links
             if link.type == "application/cap+xml" and identifier in link.href]
    assert len(links) == 1, [e.links for e in feed.entries]
    document = httpx.get(stack.url + urlsplit(links[0]).path, timeout=30)
    assert document.status_code == 200
    root = etree.fromstring(document.content)
    assert xsd_errors(root, CAP12_NS) == []
    assert capvalidator.check_schema(document.content).passed
    assert capvalidator.validate_cap_message(document.content, strict=False).passed
    return root


def sms_to(twilio: FakeTwilio, numbers: list[str], marker: str) -> Counter[str]:
    return Counter(m["to"] for m in twilio.messages if m["to"] in numbers and marker in m["body"])


def test_typhoon_release_from_draft_to_cap_and_sms(tmp_path: Path, twilio_server: FakeTwilio) -> None:
    stack = Stack(tmp_path, PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                  PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                  PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                  PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)
    stack.env["PINGAN_PUBLIC_URL"] = stack.url
    stack.up()
    try:
        for number, text in [*SUBSCRIBERS.items(), (QUITTER, "订阅 唐家湾")]:
            assert twiml_message(send_sms(stack, twilio_server, number, text))
        assert twiml_message(send_sms(stack, twilio_server, QUITTER, "退订"))
        pio = person_token(stack.env, PIO, "public_information")
        commander = person_token(stack.env, COMMANDER, "commander")

        reported = stack.post("/v1/incidents", json={
            "category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
            "title": "台风“海葵”登陆", "location": {"area_name": "唐家湾镇"}})
        assert reported.status_code == 202, reported.text
        incident_id = reported.json()["id"]
        wait_for(lambda: (body := stack.incident(incident_id)) and "plan_activated" in
                 [a["kind"] for a in body["timeline"]], 60, 0.2, "the typhoon plan activated")

        first = publish(stack, incident_id, pio, commander)
        root = feed_document(stack, first["cap_identifier"])
        assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
        [read_back] = [i.report for i in parse_cap(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))][:1]
        assert (read_back.category.value, read_back.grade.value) == ("natural_disaster", "II")

        everyone = [*SUBSCRIBERS, QUITTER, STRANGER]
        headline = first["texts"]["headline"]["zh"][:8]
        wait_for(lambda: set(sms_to(twilio_server, everyone, headline)) >= set(SUBSCRIBERS), 60, 0.2,
                 "the release's SMS to every subscriber")
        update = publish(stack, incident_id, pio, commander)
        assert update["kind"] == "update" and update["references"] == [first["id"]]
        root = feed_document(stack, update["cap_identifier"])
        assert root.findtext("cap:msgType", namespaces=NS) == "Update"
        assert first["cap_identifier"] in root.findtext("cap:references", namespaces=NS)
        wait_for(lambda: all(n == 2 for n in sms_to(twilio_server, list(SUBSCRIBERS), headline).values())
                 and len(sms_to(twilio_server, list(SUBSCRIBERS), headline)) == 2, 60, 0.2, "the update's SMS")

        ended = publish(stack, incident_id, pio, commander, all_clear=True)
        assert ended["kind"] == "all_clear"
        root = feed_document(stack, ended["cap_identifier"])
        assert root.findtext("cap:msgType", namespaces=NS) == "Cancel"

        # One SMS per subscriber per release (the alert, the update, the all-clear), none to anyone else: the
        # keyword replies were TwiML answers, not messages.
        wait_for(lambda: Counter(m["to"] for m in twilio_server.messages if m["to"] in everyone)
                 == Counter({number: 3 for number in SUBSCRIBERS}), 60, 0.2,
                 f"three SMS to each subscriber and none to others: {[m for m in twilio_server.messages]}")
    finally:
        stack.stop()
