"""Leniency where it is safe (issue #12, part 5): an empty <references/> on an Alert, old Alertmanager payloads
(version 3, numeric groupKey) with a logged warning, the CAP `Z` rule in plain words, sandboxed sends logged as
`channel=sandbox`, the 【演练】 marker once. And an unknown CAP category becomes other/general, never a hazard."""

import json
import logging
from datetime import UTC, datetime

import pytest

from pingan.handlers.incidents.delivery import after_send
from pingan.handlers.incidents.notify import build_notifications
from pingan.schemas.adapters.alertmanager import parse_alertmanager
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_rules import CapValidationError
from pingan.schemas.delivery import SendOutcome, SendResult
from pingan.schemas.events import RawKind
from pingan.schemas.notification import Notification, Recipient
from pingan.schemas.taxonomy import Category, Subtype
from tests.fixtures.cap_chain import CAP_DIR, cap_message
from tests.unit.test_notify import DIRECTORY, STEP, fire, make_plan

needs_samples = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"CAP samples not found at {CAP_DIR}")
AM_DIR = CAP_DIR.parent / "alertmanager"
T0 = datetime(2026, 8, 1, 0, 0, tzinfo=UTC)


@needs_samples
def test_an_empty_references_on_an_alert_means_none() -> None:
    data = cap_message().replace(b"<scope>Public</scope>", b"<scope>Public</scope>\n    <references/>")
    [item] = parse_cap(data)
    assert item.kind is RawKind.report and item.references == []
    assert "cap_references" not in item.report.labels


@needs_samples
def test_an_empty_references_on_an_update_is_still_refused() -> None:
    with pytest.raises(CapValidationError) as caught:
        parse_cap((CAP_DIR / "INVALID-ca-ec-empty-references.cap").read_bytes())
    assert caught.value.field == "alert.references" and "references is empty" in caught.value.message


@needs_samples
@pytest.mark.parametrize(("sent", "words"), [
    ("2026-08-01T00:00:00Z", "CAP times need an offset such as +08:00, not Z"),
    ("2026-08-01T08:00:00", "CAP times need an offset such as +08:00"),
    ("2026-08-01T08:00:00.250+08:00", "whole seconds"),
])
def test_a_cap_time_without_its_offset_is_explained_in_words(sent: str, words: str) -> None:
    with pytest.raises(CapValidationError) as caught:
        parse_cap(cap_message(sent=sent))
    error = caught.value
    assert (error.field, error.line) == ("alert.sent", 5)
    assert words in error.message and "pattern" not in error.message.lower()


@needs_samples
def test_an_expires_with_z_is_explained_too() -> None:
    with pytest.raises(CapValidationError) as caught:
        parse_cap(cap_message(expires="2003-06-17T23:00:00Z"))
    assert caught.value.field == "alert.info[0].expires" and "not Z" in caught.value.message


@needs_samples
def test_an_unknown_category_becomes_other_general_not_a_guessed_hazard() -> None:
    # Once it was natural_disaster/meteorological: a blood-stock notice started the rainstorm plan at level III.
    data = cap_message(category="Other", event="Blood Stock Notice", headline="Blood stocks are low")
    # An event code no table knows (SAME "SVR" would say thunderstorm).
    data = data.replace(b"<value>SVR</value>", b"<value>ZZQ</value>")
    [item] = parse_cap(data)
    report = item.report
    assert (report.category, report.subtype, report.hazard) == (Category.other, Subtype.general, None)
    assert report.warning_colour is None


def _v3_payload() -> bytes:
    """A version 3 webhook as old Alertmanager releases sent it: the same shape as v4, groupKey a number."""
    sample = json.loads((AM_DIR / "prom2teams-resolved-1-alert.json").read_text(encoding="utf-8"))
    sample.update(version="3", groupKey=5206633798846341528, status="firing")
    for alert in sample["alerts"]:
        alert["status"] = "firing"
    return json.dumps(sample).encode()


@pytest.mark.skipif(not AM_DIR.is_dir(), reason=f"Alertmanager samples not found at {AM_DIR}")
def test_an_old_alertmanager_payload_is_read_with_a_logged_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pingan.intake.alertmanager"):
        items = parse_alertmanager(_v3_payload(), source_name="old.json")
    assert items and all(i.kind is RawKind.report for i in items)
    labels = items[0].report.labels
    assert labels["am_group_key"] == "5206633798846341528"
    assert "version '3'" in labels["am_version_warning"] and "numeric groupKey" in labels["am_version_warning"]
    assert items[0].source_key and "5206633798846341528" in items[0].source_key
    assert any(r.levelno == logging.WARNING and "old.json" in r.getMessage() for r in caplog.records)


def _order(status: str = "exercise") -> Notification:
    return Notification(idempotency_key="k" * 16, incident_id="INC-1", incident_status=status, plan_id="p",
                        plan_version=1, step="s", recipient=Recipient(id="zhang", name="张伟", channel="twilio_sms",
                                                                      address="+12025550101"),
                        channel="twilio_sms", text="【演练】台风 INC-1", created_at=T0)


def test_a_sandboxed_send_is_logged_as_the_sandbox_not_as_the_channel_the_plan_named() -> None:
    result = SendResult(SendOutcome.delivered, provider_id="console:1")
    notified, delivered = after_send(_order(), result, 1, T0, via="sandbox").actions
    for entry in (notified, delivered):
        assert entry.details["channel"] == "sandbox" and entry.details["planned_channel"] == "twilio_sms"
    plain = after_send(_order("actual"), SendResult(SendOutcome.accepted), 1, T0, via="twilio_sms").actions[0]
    assert plain.details["channel"] == "twilio_sms" and "planned_channel" not in plain.details


def test_the_drill_marker_appears_once_when_the_title_has_it_too() -> None:
    incident = fire(status="exercise").model_copy(update={"title": "【演练】仓库起火"})
    step = {**STEP, "template": {"zh": "{title}（{area}）编号 {id}", "en": "{title} ({area}) ref {id}"}}
    orders = build_notifications(incident, make_plan([step]), T0, DIRECTORY).notifications
    assert orders
    for n in orders:
        marker = "【演练】" if n.text.startswith("【") else "[DRILL]"
        assert n.text.startswith(marker) and n.text.count(marker) == 1 and n.text.count("演练") == 1, n.text
