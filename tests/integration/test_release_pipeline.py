"""Issue 17: the SMS broadcast of published releases through the worker: a real tansu broker, a real faust worker
process (its scheduler plans the broadcast, the notifier agent sends it), the local Twilio server, SQLite and
PostgreSQL. Each subscriber of the area gets one SMS, a non-subscriber none; a restarted worker sends nothing again.
"""

import time
from datetime import UTC, datetime
from pathlib import Path

from pingan.store.repository import Store
from pingan.store.subscriptions import SubscriptionStore
from tests.fixtures.stack import pingan_env, wait_for
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import report
from tests.integration.test_release_broadcast import JISHAN, TANGJIA, TOWN, make_release, publish

SUBSCRIBERS = {f"+8613700000{i:03d}": area for i, area in enumerate([JISHAN] * 20 + [TOWN] * 5 + [TANGJIA] * 5)}
REACHED = {p for p, area in SUBSCRIBERS.items() if area in (JISHAN, TOWN)}


def test_the_worker_broadcasts_a_published_release_once(tmp_path: Path, broker_bootstrap: str, db_url: str,
                                                        twilio_server: FakeTwilio, worker_factory) -> None:  # type: ignore[no-untyped-def]
    store = Store(db_url)
    subs = SubscriptionStore(store)
    for phone, area in SUBSCRIBERS.items():
        subs.subscribe(phone, area)
    incident = report(store, f"台风 {datetime.now(UTC):%H%M%S%f}", "natural_disaster", "meteorological", "II")
    publish(store, make_release("REL-P1", incident))
    env = pingan_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_DATABASE_URL=db_url,
                     PINGAN_TWILIO_ACCOUNT_SID=twilio_server.account_sid,
                     PINGAN_TWILIO_AUTH_TOKEN=twilio_server.auth_token,
                     PINGAN_TWILIO_FROM_NUMBER=twilio_server.from_number,
                     PINGAN_TWILIO_API_BASE_URL=twilio_server.base_url)

    def mine() -> list[str]:
        return [m["to"] for m in twilio_server.messages if m["to"] in SUBSCRIBERS]

    worker = worker_factory(env)
    try:
        wait_for(lambda: len(mine()) >= len(REACHED), 90, what="the broadcast to reach every subscriber of the area")
    except AssertionError:
        raise AssertionError(worker.log_tail()) from None
    assert sorted(mine()) == sorted(REACHED), "each subscriber of the area exactly once, nobody else"
    assert wait_for(lambda: subs.figures("REL-P1").sent == len(REACHED), 30, what="the ledger to record every send")

    # A restart: the new worker's recovery and sweeps find the release planned and its intents settled.
    worker.stop()
    publish(store, make_release("REL-P2", incident, area="唐家社区"))
    worker = worker_factory(env)
    tangjia = {p for p, area in SUBSCRIBERS.items() if area in (TANGJIA, TOWN)}
    try:
        wait_for(lambda: len(mine()) >= len(REACHED) + len(tangjia), 90, what="the second release's broadcast")
    except AssertionError:
        raise AssertionError(worker.log_tail()) from None
    time.sleep(3)  # a few more sweeps: nothing more goes out
    sent = mine()
    assert len(sent) == len(REACHED) + len(tangjia)
    assert sorted(sent) == sorted(list(REACHED) + list(tangjia))
    store.close()
