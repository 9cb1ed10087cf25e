"""Issue 17's "done when", the SMS part: a grade II typhoon's release drafted, approved by a second person and
published through the release workflow (core/releases.py), then its broadcast planned by the worker's job and sent
by the concurrent notifier through the local Twilio server. People subscribe and unsubscribe by SMS keyword on the
signed Twilio webhook. Every subscriber of the area gets one SMS per published release, a non-subscriber none, a
number that sent 退订 none. SQLite and PostgreSQL."""

import asyncio
from pathlib import Path

from pingan.handlers.channels.twilio_sms import TwilioSmsChannel
from pingan.releases import ReleaseService
from pingan.schemas.common import LocalizedText
from pingan.schemas.release import ReleaseKind, ReleaseTexts
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.broadcast import Broadcaster
from pingan.streams.notifier import Dispatcher
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.test_release_broadcast import services
from tests.integration.test_releases import COMMANDER, PIO, PLANS, SENDER, typhoon
from tests.integration.test_sms_subscriptions import api, sms


def send_all(store: Store, server: FakeTwilio, tmp_path: Path, worker: Broadcaster) -> None:
    channel = TwilioSmsChannel(server.account_sid, server.auth_token, server.from_number,
                               api_base_url=server.base_url)
    dispatcher = Dispatcher(store, {"twilio_sms": channel}, Settings(data_dir=tmp_path))
    try:
        asyncio.run(dispatcher.run(worker.due(force=True)))
    finally:
        dispatcher.close()


def test_typhoon_release_reaches_each_subscriber_once_and_nobody_else(tmp_path: Path, db_url: str,
                                                                     twilio_server: FakeTwilio) -> None:
    client, store = api(tmp_path, db_url)
    town, jishan, left, nobody = "+8613600000001", "+8613600000002", "+8613600000003", "+8613600000004"
    assert "已订阅唐家湾镇" in sms(client, town, "订阅 唐家湾")
    assert "Jishan Community" in sms(client, jishan, "SUB Jishan")
    sms(client, left, "订阅 唐家湾")
    assert "已退订" in sms(client, left, "退订")

    service = ReleaseService(store, PLANS, SENDER)
    incident = typhoon(store)
    first = service.draft(incident.id, PIO).release
    service.approve(first.id, COMMANDER, revision=1)
    published = service.publish(first.id, PIO, revision=1).release
    worker = Broadcaster(services(store, tmp_path))
    send_all(store, twilio_server, tmp_path, worker)
    assert sorted(m["to"] for m in twilio_server.messages) == sorted([town, jishan])
    by_number = {m["to"]: m["body"] for m in twilio_server.messages}
    assert by_number[town].startswith("【平安】") and published.texts.headline.zh in by_number[town]
    assert by_number[jishan].startswith("[Pingan] ")  # subscribed in English

    # An update is a release of its own: one more SMS each, still nobody else; a replayed sweep sends nothing.
    update = service.draft(incident.id, PIO).release
    assert update.kind is ReleaseKind.update
    service.edit(update.id, PIO, texts=ReleaseTexts(
        headline=LocalizedText(zh="台风“海葵”最新情况", en="Typhoon Haikui: latest"),
        description=LocalizedText(zh="避护场所已增加到 12 处。", en="12 shelters are now open.")))
    service.approve(update.id, COMMANDER)
    service.publish(update.id, PIO)
    send_all(store, twilio_server, tmp_path, worker)
    send_all(store, twilio_server, tmp_path, Broadcaster(services(store, tmp_path)))
    sent = sorted(m["to"] for m in twilio_server.messages)
    assert sent == sorted([town, town, jishan, jishan])
    assert left not in sent and nobody not in sent
    assert any("12 shelters" in m["body"] for m in twilio_server.messages if m["to"] == jishan)

