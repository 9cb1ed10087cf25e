"""Issue 17: GET /v1/releases/{id}/broadcast, a release's SMS broadcast in figures, for people who may read the
incident (the store's per-release figures; the broadcast itself is tests/integration/test_release_broadcast.py)."""

import asyncio
from pathlib import Path

from pingan.handlers.access.permissions import Role
from pingan.handlers.channels.twilio_sms import TwilioSmsChannel
from pingan.settings import Settings
from pingan.store.subscriptions import SubscriptionStore
from pingan.streams.broadcast import Broadcaster
from pingan.streams.notifier import Dispatcher
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import Rig
from tests.integration.test_release_broadcast import JISHAN, make_release, publish, services


def test_broadcast_figures_over_http(tmp_path: Path, db_url: str, twilio_server: FakeTwilio) -> None:
    rig = Rig(tmp_path, db_url, twilio_server)
    subs = SubscriptionStore(rig.store)
    for i in range(3):
        subs.subscribe(f"+861380000060{i}", JISHAN)
    publish(rig.store, make_release("REL-H1", rig.fire))
    planned = Broadcaster(services(rig.store, tmp_path)).due(force=True)
    subs.unsubscribe_all("+8613800000602")
    channel = TwilioSmsChannel(twilio_server.account_sid, twilio_server.auth_token, twilio_server.from_number,
                               api_base_url=twilio_server.base_url)
    dispatcher = Dispatcher(rig.store, {"twilio_sms": channel}, Settings(data_dir=tmp_path))
    asyncio.run(dispatcher.run(planned))
    dispatcher.close()

    client = rig.client()
    answer = client.get("/v1/releases/REL-H1/broadcast", headers=rig.bearer(Role.viewer))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["planned"], body["sent"], body["unsubscribed"], body["failed"], body["pending"]) == (3, 2, 1, 0, 0)
    assert body["planned_at"] is not None
    assert client.get("/v1/releases/REL-NONE/broadcast", headers=rig.bearer(Role.viewer)).status_code == 404
    assert client.get("/v1/releases/REL-H1/broadcast").status_code == 401
    rig.close()
