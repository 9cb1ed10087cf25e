from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pingan.handlers.audit.log_chain import GENESIS_HASH, chain, verify_chain
from pingan.schemas.action import ActionDraft, ActionKind

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def drafts(n: int) -> list[ActionDraft]:
    return [
        ActionDraft(incident_id=f"INC-{i % 3}", at=T0 + timedelta(seconds=i), actor="system:test",
                    kind=ActionKind.created, details={"i": i, "标题": "仓库起火"})
        for i in range(n)
    ]


def test_chain_links_each_entry_to_the_previous() -> None:
    entries = chain(0, GENESIS_HASH, drafts(5))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash
    assert verify_chain(entries) == (5, None)


def test_changed_content_is_named() -> None:
    entries = chain(0, GENESIS_HASH, drafts(5))
    entries[2] = entries[2].model_copy(update={"details": {"i": 99}})
    checked, broken = verify_chain(entries)
    assert checked == 2 and broken is not None and broken.seq == 3
    assert "changed" in broken.reason


def test_removed_entry_is_named() -> None:
    entries = chain(0, GENESIS_HASH, drafts(5))
    del entries[1]
    _, broken = verify_chain(entries)
    assert broken is not None and broken.seq == 3 and "missing" in broken.reason


def test_rehashed_entry_breaks_the_next_link() -> None:
    entries = chain(0, GENESIS_HASH, drafts(4))
    forged = chain(1, entries[0].hash, [entries[1].model_copy(update={"actor": "mallory"})])[0]
    entries[1] = forged
    _, broken = verify_chain(entries)
    assert broken is not None and broken.seq == 3 and "prev_hash" in broken.reason


@given(st.integers(min_value=0, max_value=30), st.data())
def test_any_single_change_is_detected(n: int, data: st.DataObject) -> None:
    entries = chain(0, GENESIS_HASH, drafts(n + 1))
    victim = data.draw(st.integers(min_value=0, max_value=n))
    field = data.draw(st.sampled_from(["actor", "incident_id", "details", "at"]))
    value = {"actor": "x", "incident_id": "INC-X", "details": {"x": 1}, "at": T0 - timedelta(days=1)}[field]
    entries[victim] = entries[victim].model_copy(update={field: value})
    _, broken = verify_chain(entries)
    assert broken is not None and broken.seq == victim + 1
