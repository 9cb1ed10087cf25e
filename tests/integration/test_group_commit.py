"""Intake's group commit: concurrent requests share transactions, each gets its own results, nothing is lost."""

import asyncio

from sqlalchemy import func, select

from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.store.tables import outbox
from pingan.web.group_commit import GroupCommitter


def item(n: int, source_key: str | None = None) -> IntakeItem:
    return IntakeItem(report=IncidentReport(category="accident_disaster", subtype="fire", grade="IV",
                                            title=f"火情 {n}", dedup_key=f"k{n}"), source_key=source_key)


def test_concurrent_requests_share_commits_and_keep_their_own_results(db_url: str) -> None:
    store = Store(db_url)
    committer = GroupCommitter(store, "raw")

    async def burst() -> list[list]:  # type: ignore[type-arg]
        requests = [[item(n)] for n in range(300)] + [[item(1000, "SM-dup")], [item(1001, "SM-dup")],
                                                      [item(2000), item(2001)]]
        return await asyncio.gather(*(committer.commit(r) for r in requests))

    results = asyncio.run(burst())
    committer.stop()
    assert [len(r) for r in results] == [1] * 302 + [2]
    assert len({a.event_id for r in results for a in r}) == 303  # the duplicate answers with the first's event
    first, again = results[300][0], results[301][0]
    assert not first.duplicate and again.duplicate and again.event_id == first.event_id
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(outbox)) == 303
    assert committer.requests == 303 and committer.commits < 303  # fewer transactions than requests
    store.close()


def test_a_failed_transaction_fails_every_request_in_it(db_url: str) -> None:
    store = Store(db_url)
    committer = GroupCommitter(store, "raw")
    store.engine.dispose()
    real = store.accept_many

    def broken(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    store.accept_many = broken  # type: ignore[method-assign]

    async def two() -> list:  # type: ignore[type-arg]
        return await asyncio.gather(committer.commit([item(1)]), committer.commit([item(2)]), return_exceptions=True)

    outcomes = asyncio.run(two())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    store.accept_many = real  # type: ignore[method-assign]
    assert asyncio.run(committer.commit([item(3)]))[0].event_id  # the writer lives on after a failure
    committer.stop()
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(outbox)) == 1
    store.close()

