"""Signed checkpoints of the log's head (handlers/audit/checkpoints.py), pure."""

from datetime import UTC, datetime

from pingan.handlers.audit.checkpoints import check, genuine, sign
from pingan.handlers.audit.log_chain import GENESIS_HASH, chain
from pingan.schemas.action import Action, ActionDraft, ActionKind

KEY = b"k"
T = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def log(n: int) -> list[Action]:
    return chain(0, GENESIS_HASH, [ActionDraft(incident_id="INC-1", at=T, actor="a", kind=ActionKind.created,
                                               details={"n": i}) for i in range(n)])


def test_a_signature_covers_every_field() -> None:
    cp = sign(5, "a" * 64, T, KEY)
    assert genuine(cp, KEY) and not genuine(cp, b"other")
    assert not genuine(cp.model_copy(update={"seq": 6}), KEY)
    assert not genuine(cp.model_copy(update={"hash": "b" * 64}), KEY)


def test_an_intact_log_agrees_with_its_checkpoints_and_an_empty_one_with_none() -> None:
    entries = log(20)
    cps = [sign(e.seq, e.hash, T, KEY) for e in entries if e.seq in (5, 20)]
    report = check(entries, cps, KEY)
    assert report.ok and report.checkpoints == 2 and (report.head_seq, report.entries) == (20, 20)
    assert check([], [], KEY).ok


def test_truncation_rewrite_and_forgery_are_each_named() -> None:
    entries = log(20)
    cps = [sign(e.seq, e.hash, T, KEY) for e in entries if e.seq in (5, 10, 20)]
    truncated = check(entries[:12], cps, KEY)
    assert [f.kind for f in truncated.findings] == ["TRUNCATED"]
    assert "ends at seq 12" in truncated.findings[0].message and "8 entries" in truncated.findings[0].message
    # Rewrite entry 8 and recompute the chain from there: only the checkpoints can tell.
    rewritten = entries[:7] + chain(7, entries[6].hash, [entries[7].model_copy(update={"actor": "mallory"}),
                                                         *entries[8:]])
    report = check(rewritten, cps, KEY)
    assert [f.kind for f in report.findings] == ["REWRITTEN"] and "seq 6..10" in report.findings[0].message
    forged = check(entries, [*cps, sign(30, "c" * 64, T, b"not the key")], KEY)
    assert [f.kind for f in forged.findings] == ["FORGED"]
