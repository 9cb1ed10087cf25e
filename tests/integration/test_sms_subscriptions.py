"""Issue 17: public SMS subscriptions by keyword, on the signed Twilio SMS webhook and a real store (SQLite and
PostgreSQL): 订阅 / SUB subscribe the sender to an area, 退订 / TD / STOP / UNSUB / 取消订阅 end every subscription
from any number, each change kept in the history, and no keyword becomes a citizen's report."""

import secrets
from pathlib import Path

from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.store.subscriptions import SubscriptionStore
from pingan.web.app import create_api

TWILIO_TOKEN = "t-twilio-" + "s" * 16
BASE = "http://testserver"
TOWN, JISHAN = "440402100", "440402100003"


def api(tmp_path: Path, db_url: str) -> tuple[TestClient, Store]:
    store = Store(db_url)
    app = create_api(Settings(data_dir=tmp_path, heartbeat_interval_s=0, twilio_auth_token=TWILIO_TOKEN), store,
                     tokens={"api": "a", "alertmanager": "b", "cap": "c", "metrics": "d"})
    return TestClient(app), store


def sms(client: TestClient, sender: str, text: str, sid: str | None = None) -> str:
    form = {"MessageSid": sid or "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15005550006", "Body": text, "NumMedia": "0"}
    url = BASE + "/v1/intake/twilio/sms"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    response = client.post(url.removeprefix(BASE), data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return response.text


def no_reports(store: Store) -> bool:
    with store.engine.connect() as conn:
        from sqlalchemy import text
        return conn.scalar(text("SELECT COUNT(*) FROM outbox")) == 0


def test_subscribe_and_unsubscribe_by_keyword(tmp_path: Path, db_url: str) -> None:
    client, store = api(tmp_path, db_url)
    subs = SubscriptionStore(store)
    zh, en = "+8613800000001", "+8613800000002"

    reply = sms(client, zh, "订阅 唐家湾")
    assert "已订阅唐家湾镇" in reply and "退订" in reply
    reply = sms(client, en, "SUB Jishan")
    assert "Subscribed to public warnings for Jishan Community" in reply
    assert subs.active(zh) == {TOWN} and subs.active(en) == {JISHAN}

    reply = sms(client, zh, "订阅 北京")  # unknown: the reply lists areas one may subscribe to
    assert "没有找到地区“北京”" in reply and "唐家湾镇" in reply and "鸡山社区" in reply
    reply = sms(client, en, "SUB Atlantis")
    assert 'No area called "Atlantis"' in reply and "Tangjiawan Town" in reply
    assert subs.active(zh) == {TOWN} and subs.active(en) == {JISHAN}

    reply = sms(client, zh, "TD")  # ASCII, but the number subscribed in Chinese: answered in Chinese
    assert "已退订全部预警短信" in reply
    reply = sms(client, en, "UNSUB")
    assert "unsubscribed from all warning messages" in reply
    assert subs.active(zh) == set() and subs.active(en) == set()
    assert no_reports(store), "a keyword was taken for a citizen's report"

    # History, not overwrite: every change is there with its time.
    history = subs.history(zh)
    assert [(c.action, c.area_code) for c in history] == [("subscribe", TOWN), ("unsubscribe", "*")]
    assert all(c.at is not None for c in history) and history[0].at <= history[1].at


def test_unsubscribe_always_works_even_from_unknown_numbers(tmp_path: Path, db_url: str) -> None:
    client, store = api(tmp_path, db_url)
    subs = SubscriptionStore(store)
    stranger = "+8613900000009"
    assert "已退订" in sms(client, stranger, "退订")
    assert "已退订" in sms(client, stranger, "取消订阅")
    # STOP is Twilio's own word: Twilio answers it, so ours is empty, but it is recorded all the same.
    assert "<Message>" not in sms(client, stranger, "STOP")
    assert [c.action for c in subs.history(stranger)] == ["unsubscribe"] * 3
    # Subscribed to two areas, one 退订 ends both.
    sms(client, stranger, "订阅 鸡山")
    sms(client, stranger, "订阅 唐家")
    assert len(subs.active(stranger)) == 2
    sms(client, stranger, "退订 鸡山")
    assert subs.active(stranger) == set()
    assert subs.opted_out([stranger]) == {stranger}
    assert no_reports(store)


def test_a_reposted_message_records_once(tmp_path: Path, db_url: str) -> None:
    client, store = api(tmp_path, db_url)
    subs = SubscriptionStore(store)
    sid = "SM" + secrets.token_hex(16)
    first = sms(client, "+8613800000003", "订阅 鸡山", sid)
    assert sms(client, "+8613800000003", "订阅 鸡山", sid) == first
    assert len(subs.history("+8613800000003")) == 1


def test_a_report_is_still_a_report(tmp_path: Path, sqlite_url: str) -> None:
    client, store = api(tmp_path, sqlite_url)
    reply = sms(client, "+8613800000004", "唐家湾大道有车辆起火")
    assert "已收到您的报告" in reply and not no_reports(store)
    # English SUB before words that name no area is a report too; before an area, or one word, a subscription.
    assert "Report received" in sms(client, "+8613800000005", "Sub station on fire")
    assert "Subscribed" in sms(client, "+8613800000005", "SUB Tangjiawan Town")
    assert 'No area called "Beijing"' in sms(client, "+8613800000005", "SUB Beijing")


def test_a_delivery_report_for_a_public_broadcast_sms_stays_out_of_the_log(tmp_path: Path, db_url: str) -> None:
    from datetime import UTC, datetime

    from pingan.handlers.incidents.broadcast import Subscriber, subscriber_intents
    from pingan.schemas.areas import AlertArea
    from pingan.store.ledger import ledger_row
    from pingan.store.tables import notifications
    from pingan.web.twilio_subscriptions import district_of
    from tests.integration.test_release_broadcast import make_release

    client, store = api(tmp_path, db_url)
    release = make_release("REL-S1", "INC-S1").model_copy(update={"areas": [AlertArea(name="鸡山")]})
    [n] = subscriber_intents(release, district_of(None), [Subscriber("+8613800000501", frozenset({JISHAN}))],
                             datetime.now(UTC))
    sid = "SM" + secrets.token_hex(16)
    with store.engine.begin() as conn:
        conn.execute(notifications.insert().values(**{**ledger_row(n, n.created_at), "state": "sent",
                                                      "provider_id": sid}))
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32,
            "To": "+8613800000501", "From": "+15005550006"}
    url = BASE + "/v1/intake/twilio/status"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    response = client.post(url.removeprefix(BASE), data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204, response.text
    assert store.ledger_entry(n.idempotency_key).state.value == "delivered"  # type: ignore[union-attr]
    assert store.timeline("INC-S1") == []
