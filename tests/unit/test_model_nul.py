"""The base Model drops NUL characters from every string (issue 14, finding 5), by whichever route a model is made;
model_validate_json skips the walk only when the document cannot hold a NUL (issue 15: the walk was most of a parse).
"""

import pytest
from pydantic import ValidationError

from pingan.schemas.common import NUL_FREE
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport

REPORT = {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "火\u0000警",
          "labels": {"k\u0000": "v\u0000"}, "reporter": {"name": "张\u0000三"}}


def event_json(report: dict[str, object]) -> str:
    return RawEvent(event_id="e" * 32, proposed_incident_id="INC-1", received_at="2026-12-05T00:00:00Z",
                    report=IncidentReport.model_validate(report)).model_dump_json()


@pytest.mark.parametrize("as_bytes", [False, True])
def test_an_escaped_nul_in_json_is_dropped_at_every_depth(as_bytes: bool) -> None:
    text = event_json({**REPORT, "title": "火警"}).replace('"火警"', '"火\\u0000警"').replace(
        '"name":null', '"name":"张\\u0000三"')
    assert "\\u0000" in text
    event = RawEvent.model_validate_json(text.encode() if as_bytes else text)
    assert event.report.title == "火警"


def test_python_construction_drops_nul_in_nested_models_and_dict_keys() -> None:
    report = IncidentReport.model_validate(REPORT)
    assert report.title == "火警" and report.labels == {"k": "v"}
    assert report.reporter is not None and report.reporter.name == "张三"


def test_a_nul_free_document_is_parsed_the_same_and_a_raw_nul_is_invalid_json() -> None:
    text = event_json({**REPORT, "title": "火警", "labels": {}, "reporter": None})
    assert RawEvent.model_validate_json(text) == RawEvent.model_validate_json(text, context={"other": 1})
    with pytest.raises(ValidationError, match="control character"):
        RawEvent.model_validate_json(text.replace("火警", "火\x00警"))


def test_a_caller_cannot_skip_the_walk_for_a_document_with_a_nul() -> None:
    text = event_json({**REPORT, "title": "火警", "labels": {}, "reporter": None}).replace('"火警"', '"火\\u0000警"')
    # The flag is only ever set by model_validate_json after its own look; a document with a NUL is walked.
    assert RawEvent.model_validate_json(text, context={NUL_FREE: True}).report.title == "火警"
