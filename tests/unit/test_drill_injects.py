"""A drill's injects as the real intake routes' payloads (issue 14, finding 12): a CAP Update naming the previous
message, an Alertmanager webhook and Twilio forms that the real adapters read as the run's exercises. Pure."""

import json
import re
from datetime import UTC, datetime

from pingan.handlers.drills.injects import (
    alertmanager_webhook,
    cap_triple,
    cap_update,
    exercise_cap,
    twilio_sms_form,
    twilio_voice_forms,
    with_references,
)
from pingan.schemas.adapters.alertmanager import parse_alertmanager
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.twilio_forms import DRILL_FIELD, as_exercise, sms_to_item, voice_choice
from pingan.schemas.drill import Inject
from pingan.schemas.taxonomy import Grade

ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>WX-1</identifier>
  <sender>weather@tangjiawan.example</sender>
  <sent>2026-08-01T08:00:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Met</category>
    <event>台风黄色预警</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <area><areaDesc>唐家湾镇</areaDesc></area>
  </info>
</alert>
"""
T0, T1, T2 = (datetime(2026, 8, 1, 0, m, tzinfo=UTC) for m in (0, 5, 10))


def references(xml: str) -> str:
    found = re.search(r"<references>([^<]*)</references>", xml)
    assert found, xml
    return found.group(1)


def test_each_update_of_a_chain_names_the_message_before_it() -> None:
    alert = exercise_cap(ALERT, "run1", T0)
    first = cap_update(alert, Grade.II, 1, T1, previous=alert)
    second = cap_update(alert, Grade.I, 2, T2, previous=first)
    assert references(first) == "weather@tangjiawan.example,WX-1.drill-run1,2026-08-01T00:00:00+00:00"
    assert references(second) == cap_triple(first) == \
        "weather@tangjiawan.example,WX-1.drill-run1.u1,2026-08-01T00:05:00+00:00"
    assert second.count("<references>") == 1
    for xml in (first, second):  # valid CAP 1.2 (the XSD and the rules), graded as asked
        item = parse_cap(xml.encode())[0]
        assert item.report is not None and item.report.status.value == "exercise"
    assert parse_cap(second.encode())[0].report.grade is Grade.I  # type: ignore[union-attr]
    # A scripted message's own <references> (even an empty one) is replaced, not added to.
    update = with_references(ALERT.replace("<scope>", "<references/>\n  <scope>"), first)
    assert update.count("references") == 2 and references(update) == cap_triple(first)


def test_an_alertmanager_inject_is_read_by_the_adapter_as_the_runs_exercise() -> None:
    inject = Inject.model_validate({"id": "probe", "at_min": 0, "via": "alertmanager", "report": {
        "category": "accident_disaster", "subtype": "fire", "hazard": "fire", "grade": "III", "title": "仓库起火",
        "location": {"area_code": "440402100001"}}})
    item = parse_alertmanager(json.dumps(alertmanager_webhook(inject, "run1", T0)).encode())[0]
    report = item.report
    assert report is not None and (report.status.value, report.grade, report.subtype.value, report.title) == \
        ("exercise", Grade.III, "fire", "仓库起火")
    assert report.labels["drill_run"] == "run1" and report.location.area_code == "440402100001"


def test_twilio_injects_become_exercises_of_the_run() -> None:
    text = Inject.model_validate({"id": "t", "at_min": 0, "sms": {"phone": "+8613800000001", "text": "唐家社区起火"}})
    form = twilio_sms_form(text, "run1", "SM" + "a" * 32, "AC" + "b" * 32, "+8675612345")
    assert form[DRILL_FIELD] == "run1"
    plain = sms_to_item(form).item
    assert plain is not None and plain.report is not None and plain.report.status.value == "actual"
    drill = as_exercise(plain, "run1")
    assert drill.report is not None and drill.report.status.value == "exercise"
    assert drill.report.labels["drill_run"] == "run1" and drill.source_key == plain.source_key
    assert drill.report.dedup_key == f"{plain.report.effective_dedup_key()}:drill-run1"

    call = Inject.model_validate({"id": "c", "at_min": 0, "voice": {"digit": "1"}})
    posts = twilio_voice_forms(call, "run1", "CA" + "c" * 32, "AC" + "b" * 32, "+8675612345")
    assert [p for p, _ in posts] == ["/voice", "/voice/choice"]
    outcome = voice_choice(posts[1][1], "https://pingan.example.org/v1/intake/twilio/voice/recording")
    assert outcome.item is not None and as_exercise(outcome.item, "run1").report.status.value == "exercise"  # type: ignore[union-attr]
