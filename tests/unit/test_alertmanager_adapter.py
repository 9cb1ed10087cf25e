import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pingan.schemas.adapters.alertmanager import AlertmanagerMapping, LabelRule, label_hash, parse_alertmanager
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.events import RawKind
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source, Subtype

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "alertmanager"

# file -> (number of alerts, kind of every item); None means the sample must be rejected.
EXPECTED: dict[str, tuple[int, RawKind] | None] = {
    "INVALID-prom2teams-missing-status.json": None,
    "msteams-empty-commonAnnotations.json": (1, RawKind.report),
    "msteams-firing-1-alert.json": (1, RawKind.report),
    "msteams-firing-12-alerts.json": (12, RawKind.report),
    "msteams-firing-2-alerts.json": (2, RawKind.report),
    "msteams-large-19-alerts-regex-groupkey.json": (19, RawKind.report),
    "prom2teams-extra-annotations.json": (1, RawKind.close),
    "prom2teams-extra-labels.json": (1, RawKind.close),
    "prom2teams-k8s-cputhrottling-full.json": (1, RawKind.close),
    "prom2teams-no-fingerprint.json": (1, RawKind.close),
    "prom2teams-no-instance-label.json": (1, RawKind.close),
    "prom2teams-resolved-1-alert.json": (1, RawKind.close),
    "prom2teams-resolved-2-alerts.json": (2, RawKind.close),
}


def _samples() -> list[Any]:
    if not SAMPLES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SAMPLES} absent"))]
    return [pytest.param(path, id=path.name) for path in sorted(SAMPLES.glob("*.json"))]


def _sample(name: str) -> dict[str, Any]:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return json.loads(path.read_bytes())


def _hook(**alert: Any) -> bytes:
    base = {"status": "firing", "labels": {"alertname": "PumpDown"}, "startsAt": "2026-07-01T08:00:00+08:00",
            "fingerprint": "0123456789abcdef"}
    body = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "pingan",
            "externalURL": "http://am:9093", "alerts": [{**base, **alert}]}
    return json.dumps(body).encode()


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="samples absent")
def test_every_sample_has_an_expectation() -> None:
    assert {p.name for p in SAMPLES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("path", _samples())
def test_sample(path: Path) -> None:
    expected = EXPECTED[path.name]
    if expected is None:
        with pytest.raises(IntakeError) as err:
            parse_alertmanager(path.read_bytes(), source_name=path.name)
        assert err.value.field == "alerts[0].status" and err.value.source == path.name
        return
    count, kind = expected
    raw = json.loads(path.read_bytes())
    items = parse_alertmanager(path.read_bytes(), source_name=path.name)
    assert len(items) == count == len(raw["alerts"])
    for item, alert in zip(items, raw["alerts"], strict=True):
        ident = alert.get("fingerprint") or hashlib.sha256(
            json.dumps(sorted(alert["labels"].items()), separators=(",", ":")).encode()).hexdigest()
        status = alert.get("status") or raw["status"]
        assert item.kind is kind
        assert item.report.dedup_key == "am:" + ident
        assert item.report.source is Source.alertmanager
        assert item.source_key is not None and len(item.source_key) <= 300
        assert item.source_key.endswith(f":{ident}:{alert['startsAt']}:{status}")
        assert item.report.labels["am_receiver"] == raw["receiver"]
        assert item.report.attachments[0].kind == "raw_alert"
        assert item.report.attachments[0].data == alert
        assert item.report.attachments[0].url == alert.get("generatorURL")
        assert item.report.occurred_at is not None and item.report.occurred_at.tzinfo is UTC
        assert "am_version_warning" not in item.report.labels and "am_truncated_alerts" not in item.report.labels


def test_no_fingerprint_gets_a_stable_label_hash_key() -> None:
    raw = _sample("prom2teams-no-fingerprint.json")
    first = parse_alertmanager(json.dumps(raw).encode())[0]
    labels = raw["alerts"][0]["labels"]
    raw["alerts"][0]["labels"] = dict(reversed(list(labels.items())))  # key order must not matter
    again = parse_alertmanager(json.dumps(raw, indent=2).encode())[0]
    assert first.report.dedup_key == again.report.dedup_key == "am:" + label_hash(labels)
    assert first.report.dedup_key == "am:bcae5a3f2988a2d6649b4f9f81db2cc2fb882d5df6b33873a85ea2ee4d3e43d4"
    assert first.source_key == again.source_key


def test_msteams_sample_details() -> None:
    item = parse_alertmanager(json.dumps(_sample("msteams-firing-1-alert.json")).encode())[0]
    report = item.report
    assert report.title == "Server High Memory usage"
    assert report.description == "10.80.40.11 reported high memory usage with 23.28%."
    assert report.occurred_at == datetime(2018, 3, 7, 11, 33, 21, 873077, tzinfo=UTC)  # -05:00, nanoseconds cut
    assert report.grade is Grade.III  # severity warning
    assert (report.category, report.subtype) == (Category.accident_disaster, Subtype.public_facility)
    assert report.labels["am_group_key"] == '{}:{alertname="high_memory_load"}'
    assert report.labels["am_external_url"] == "http://docker.for.mac.host.internal:9093"
    assert report.labels["instance"] == "instance-with-hyphen_and_underscore"
    assert item.source_key.startswith('am:{}:{alertname="high_memory_load"}:')


def test_long_group_key_is_digested_in_the_source_key() -> None:
    raw = _sample("msteams-large-19-alerts-regex-groupkey.json")
    items = parse_alertmanager(json.dumps(raw).encode())
    assert all(i.source_key.startswith("am:sha256:") for i in items)
    assert len({i.report.dedup_key for i in items}) == 19
    assert items[0].report.grade is Grade.II  # severity page


def test_resolved_k8s_sample_keeps_message_and_runbook() -> None:
    item = parse_alertmanager(json.dumps(_sample("prom2teams-k8s-cputhrottling-full.json")).encode())[0]
    assert item.kind is RawKind.close and item.report.description.startswith("27% throttling of CPU")
    assert item.report.attachments[0].data["annotations"]["runbook_url"].startswith("https://github.com/")


def test_truncated_alerts_are_recorded_on_every_item() -> None:
    raw = _sample("msteams-firing-2-alerts.json")
    raw["truncatedAlerts"] = 3
    items = parse_alertmanager(json.dumps(raw).encode())
    assert [i.report.labels["am_truncated_alerts"] for i in items] == ["3", "3"]


def test_retry_is_idempotent_and_resolve_is_a_new_event() -> None:
    firing = parse_alertmanager(_hook())[0]
    assert parse_alertmanager(_hook())[0].source_key == firing.source_key
    resolved = parse_alertmanager(_hook(status="resolved"))[0]
    assert resolved.kind is RawKind.close and resolved.source_key != firing.source_key
    assert resolved.report.dedup_key == firing.report.dedup_key == "am:0123456789abcdef"


def test_alert_status_falls_back_to_the_group() -> None:
    body = json.loads(_hook())
    del body["alerts"][0]["status"]
    body["status"] = "resolved"
    assert parse_alertmanager(json.dumps(body).encode())[0].kind is RawKind.close


def test_zero_start_time_is_no_occurrence_time() -> None:
    assert parse_alertmanager(_hook(startsAt="0001-01-01T00:00:00Z"))[0].report.occurred_at is None


def test_other_version_is_accepted_with_a_warning() -> None:
    body = json.loads(_hook())
    body["version"] = "5"
    item = parse_alertmanager(json.dumps(body).encode())[0]
    assert "'5'" in item.report.labels["am_version_warning"]


def test_title_falls_back_to_alertname_and_labels_are_bounded() -> None:
    labels = {f"l{n:03d}": "v" * 500 for n in range(100)} | {"alertname": "PumpDown", "k" * 100: "x"}
    item = parse_alertmanager(_hook(labels=labels))[0]
    copied = {k: v for k, v in item.report.labels.items() if not k.startswith("am_")}
    assert len(copied) == 64 and item.report.labels["am_labels_dropped"] == str(102 - 64)
    assert all(len(k) <= 64 and len(v) <= 256 for k, v in item.report.labels.items())
    assert item.report.title == "PumpDown"


def test_explicit_labels_and_severity() -> None:
    labels = {"alertname": "RiverLevel", "severity": "critical", "pingan_category": "natural_disaster",
              "pingan_subtype": "flood_drought", "pingan_hazard": "flood", "area_code": "990101002", "area": "东湖街道"}
    report = parse_alertmanager(_hook(labels=labels))[0].report
    assert (report.category, report.subtype, report.hazard) == (Category.natural_disaster, Subtype.flood_drought,
                                                                "flood")
    assert report.grade is Grade.II
    assert (report.location.area_code, report.location.area_name) == ("990101002", "东湖街道")
    grade_one = parse_alertmanager(_hook(labels={"alertname": "x", "severity": "info", "pingan_grade": "1"}))[0]
    assert grade_one.report.grade is Grade.I
    drill = parse_alertmanager(_hook(labels={"alertname": "x", "pingan_status": "exercise"}))[0]
    assert drill.report.status is IncidentStatus.exercise


def test_bad_explicit_labels_warn_instead_of_rejecting() -> None:
    labels = {"alertname": "x", "pingan_category": "natural_disaster", "pingan_subtype": "fire", "pingan_grade": "V"}
    report = parse_alertmanager(_hook(labels=labels))[0].report
    assert (report.category, report.subtype) == (Category.natural_disaster, Subtype.meteorological)
    assert report.grade is Grade.IV
    assert "pingan_grade='V'" in report.labels["am_mapping_warning"]
    assert "'fire' is not in category" in report.labels["am_mapping_warning"]


def test_custom_mapping_rules() -> None:
    mapping = AlertmanagerMapping(
        rules=(
            LabelRule(match={"job": "river_gauge"}, category=Category.natural_disaster, subtype=Subtype.flood_drought,
                      hazard="flood", area_code="990101100", area_name="河口镇"),
            LabelRule(match_re={"alertname": "Gas.*"}, category=Category.accident_disaster,
                      subtype=Subtype.hazardous_chemicals, grade=Grade.III),
            LabelRule(match_re={"alertname": ".*"}, grade=Grade.II),
        ),
        severity_grades={"p1": Grade.II},
        default_subtype=Subtype.industrial_safety,
    )
    river = parse_alertmanager(_hook(labels={"alertname": "LevelHigh", "job": "river_gauge"}), mapping)[0].report
    assert (river.subtype, river.hazard, river.grade) == (Subtype.flood_drought, "flood", Grade.II)
    assert river.location.area_name == "河口镇"
    gas = parse_alertmanager(_hook(labels={"alertname": "GasSensor"}), mapping)[0].report
    assert (gas.subtype, gas.grade) == (Subtype.hazardous_chemicals, Grade.III)  # first rule that sets grade
    other = parse_alertmanager(_hook(labels={"alertname": "Other"}), mapping)[0].report
    assert (other.category, other.subtype) == (Category.accident_disaster, Subtype.industrial_safety)
    assert other.grade is Grade.II  # the catch-all rule sets grade only


def test_mapping_rejects_inconsistent_rules() -> None:
    with pytest.raises(ValueError):
        LabelRule(match={"a": "b"}, category=Category.public_health, subtype=Subtype.fire)
    with pytest.raises(ValueError):
        AlertmanagerMapping(default_category=Category.public_health)


def test_bad_json_gives_line_and_column() -> None:
    with pytest.raises(IntakeError) as err:
        parse_alertmanager(b'{\n  "version": "4",\n  "alerts": [,]\n}', source_name="hook.json")
    assert (err.value.line, err.value.col, err.value.source) == (3, 14, "hook.json")
    assert str(err.value).startswith("hook.json:3:14: ")


@pytest.mark.parametrize(("alert", "field"), [
    ({"labels": ["alertname"]}, "alerts[0].labels"),
    ({"labels": {"alertname": 7}}, "alerts[0].labels.alertname"),
    ({"status": "pending"}, "alerts[0].status"),
    ({"startsAt": "yesterday"}, "alerts[0].startsAt"),
])
def test_wrong_types_name_the_field(alert: dict[str, Any], field: str) -> None:
    with pytest.raises(IntakeError) as err:
        parse_alertmanager(_hook(**alert))
    assert err.value.field == field


def test_missing_alerts_and_non_object() -> None:
    with pytest.raises(IntakeError) as err:
        parse_alertmanager(b'{"version": "4"}')
    assert err.value.field == "alerts"
    with pytest.raises(IntakeError):
        parse_alertmanager(b"[]")
    with pytest.raises(IntakeError):
        parse_alertmanager(b"\xff\xfe{")
