"""The scheduler re-publishes a never-tried intent after 2 s, then after as long again as it has waited (2, 4, 8…
up to 60 s): a lost order goes again soon, a backlog is not multiplied. Real store, the scheduler's own code."""

from datetime import timedelta
from unittest import mock

from pingan.bootstrap import Services
from pingan.handlers.plans.planset import PlanSet
from pingan.schemas.common import utcnow
from pingan.schemas.notification import Notification, Recipient
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.scheduler import Scheduler


def test_never_tried_intents_are_republished_with_a_doubling_wait(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(db_url)
    t0 = utcnow()
    n = Notification(idempotency_key="k" * 32, incident_id="INC-1", plan_id="p", plan_version=1, step="s",
                     recipient=Recipient(id="duty", name="值班室", channel="console", address="duty-room"),
                     channel="console", text="火情 INC-1", created_at=t0)
    store.apply_response("INC-1", None, None, [n], [])
    clock = {"now": t0}
    scheduler = Scheduler(Services(Settings(data_dir=tmp_path), store, PlanSet.empty()), "127.0.0.1:9",
                          clock=lambda: clock["now"])

    republished = []
    for tenth in range(0, 40 * 10):  # 40 s, a tick every 0.1 s, the ledger's clock following the scheduler's
        clock["now"] = t0 + timedelta(seconds=tenth / 10)
        with mock.patch("pingan.store.response.utcnow", return_value=clock["now"]):
            if scheduler.retries(clock["now"]):
                republished.append(tenth / 10)
    # The row was stored a few ms after t0: first after ~2 s, then doubling (a flat 2 s would be 19 times).
    assert len(republished) == 5 and 2.0 <= republished[0] <= 2.3, republished
    gaps = [b - a for a, b in zip(republished, republished[1:], strict=False)]
    assert all(abs(later / earlier - 2) < 0.1 for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    store.close()
