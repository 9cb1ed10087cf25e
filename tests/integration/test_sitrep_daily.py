"""The daily situation report (issue 17 part 3): at `sitrep_daily_at` local time the worker's job issues yesterday's
report once, however many workers ask and across a restart, stores it, logs it in the hash chain, e-mails it (local
SMTP server) and posts it to a signed webhook (local receiver); a delivery its worker did not finish is taken over
once; `GET /v1/sitreps` and `GET /v1/sitreps/{id}` list and return it to readers, not to department liaisons.
SQLite and PostgreSQL, with the known week of tests/integration/test_sitrep.py. Its HTML has four charts: over time,
categories, communities (the week's incidents are placed, issue 18) and channels.
"""

from __future__ import annotations

import io
import shutil
import threading
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from pingan.bootstrap import build_channels
from pingan.handlers.access.permissions import Role
from pingan.handlers.audit.log_chain import verify_chain
from pingan.schemas.action import ActionKind
from pingan.settings import Settings
from pingan.sitrep_daily import DailySitreps
from pingan.store.log import iter_log
from pingan.store.repository import Store
from pingan.store.sitreps import get_sitrep, list_sitreps
from tests.integration.test_email_channel import Mailbox, smtp  # noqa: F401 - the fixture
from tests.integration.test_sitrep import known_week
from tests.integration.test_webhook_channel import SECRET, Receiver, receiver  # noqa: F401 - the fixture

MAIL_TO = "leaders@district.example.org"
BEFORE = datetime.fromisoformat("2026-11-23T23:59:00+00:00")  # 07:59 on 11-24 in Shanghai
AT = datetime.fromisoformat("2026-11-24T00:30:00+00:00")  # 08:30 on 11-24: the report of 11-23 is due
DAY_ID = "sitrep-day-2026-11-23"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, smtp: tuple[Mailbox, int], receiver: Receiver) -> Settings:  # noqa: F811
    plans = known_week(db_url, tmp_path)
    return Settings(database_url=db_url, data_dir=tmp_path / "var", plans_dir=plans, timezone="Asia/Shanghai",
                    heartbeat_interval_s=0, sitrep_daily_at="08:00", sitrep_daily_to=f"{MAIL_TO}, {receiver.url}",
                    smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_sender="pingan@district.example.org",
                    webhook_secret=SECRET)


def _entries(store: Store, kind: ActionKind) -> list[object]:
    return [a for a in iter_log(store.engine) if a.kind == kind]


def test_issued_once_by_two_workers_and_a_restart(settings: Settings, smtp: tuple[Mailbox, int],  # noqa: F811
                                                 receiver: Receiver) -> None:  # noqa: F811
    stores = [Store(settings.resolved_database_url) for _ in range(3)]
    try:
        workers = [DailySitreps(s, settings, build_channels(settings)) for s in stores]
        assert workers[0].tick(BEFORE) is None  # before 08:00 local: nothing
        assert list_sitreps(stores[0].engine) == ([], 0)
        issued: list[str | None] = []
        threads = [threading.Thread(target=lambda w=w: issued.append(w.tick(AT))) for w in workers[:2]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert sorted(issued, key=str) == [None, DAY_ID]
        assert workers[2].tick(AT.replace(hour=9)) is None  # a restarted worker later that morning: already issued
        row = get_sitrep(stores[0].engine, DAY_ID)
        assert row is not None and row.state == "delivered" and row.kind == "day"
        assert set(row.delivery) == {MAIL_TO, receiver.url}
        assert row.body is not None and '"incidents":1' in row.body.replace(" ", "")  # INC-A, 11-23 local
        assert "<svg" in (row.html or "")
        mailbox = smtp[0]
        assert len(mailbox.received) == 1
        message = mailbox.received[0][1]
        assert message["To"] == MAIL_TO and "突发事件态势研判报告" in message.get_body(("plain",)).get_content()
        [attached] = list(message.iter_attachments())
        assert attached.get_filename() == f"{DAY_ID}.html" and attached.get_content().count("<svg") == 4
        assert len(receiver.received) == 1 and receiver.received[0]["valid"]
        assert [a.details["start"] for a in _entries(stores[0], ActionKind.sitrep_issued)] == \
            ["2026-11-22T16:00:00+00:00"]
        [delivered] = _entries(stores[0], ActionKind.sitrep_delivered)
        assert delivered.details["state"] == "delivered"
        _, broken = verify_chain(iter_log(stores[0].engine))
        assert broken is None
    finally:
        for s in stores:
            s.close()


def test_a_delivery_left_sending_is_taken_over_once(settings: Settings, smtp: tuple[Mailbox, int],  # noqa: F811
                                                    receiver: Receiver) -> None:  # noqa: F811
    first, second = Store(settings.resolved_database_url), Store(settings.resolved_database_url)
    try:
        dying = DailySitreps(first, settings, build_channels(settings))

        def die(*_: object) -> None:
            raise RuntimeError("worker killed before it sent")

        dying.deliver = die  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            dying.tick(AT)
        assert get_sitrep(first.engine, DAY_ID).state == "sending"  # type: ignore[union-attr]
        survivor = DailySitreps(second, settings, build_channels(settings))
        survivor.tick(AT.replace(minute=35))  # 5 minutes later: the first may still be sending
        assert smtp[0].received == [] and receiver.received == []
        survivor.tick(AT.replace(minute=41))  # 11 minutes later: taken over
        survivor.tick(AT.replace(minute=55))
        assert len(smtp[0].received) == 1 and len(receiver.received) == 1
        assert get_sitrep(second.engine, DAY_ID).state == "delivered"  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


def test_a_mail_server_saying_later_is_tried_again_until_it_takes_it(settings: Settings,  # noqa: F811
                                                                       smtp: tuple[Mailbox, int],  # noqa: F811
                                                                       receiver: Receiver) -> None:  # noqa: F811
    mailbox = smtp[0]
    mailbox.data_reply = "451 4.3.0 mailbox busy, try again later"
    store = Store(settings.resolved_database_url)
    try:
        daily = DailySitreps(store, settings, build_channels(settings))
        assert daily.tick(AT) == DAY_ID
        row = get_sitrep(store.engine, DAY_ID)
        assert row is not None and row.state == "retry"
        assert row.delivery[MAIL_TO]["outcome"] == "transient_failure" and row.delivery[MAIL_TO]["attempts"] == 1
        assert row.delivery[receiver.url]["outcome"] == "delivered"  # a 2xx from the receiver
        daily.tick(AT.replace(minute=34))  # before RETRY_S: nothing
        assert get_sitrep(store.engine, DAY_ID).delivery[MAIL_TO]["attempts"] == 1  # type: ignore[union-attr]
        mailbox.data_reply = None
        daily.tick(AT.replace(minute=36))
        row = get_sitrep(store.engine, DAY_ID)
        assert row is not None and row.state == "delivered" and row.delivery[MAIL_TO]["attempts"] == 2
        assert len(mailbox.received) == 1 and len(receiver.received) == 1  # the webhook was not posted again
        assert [a.details["state"] for a in _entries(store, ActionKind.sitrep_delivered)] == ["retry", "delivered"]
    finally:
        store.close()


def test_a_mail_server_that_never_takes_it_fails_after_five_attempts(settings: Settings,  # noqa: F811
                                                                     smtp: tuple[Mailbox, int]) -> None:  # noqa: F811
    smtp[0].data_reply = "451 4.3.0 mailbox busy, try again later"
    store = Store(settings.resolved_database_url)
    try:
        daily = DailySitreps(store, settings, build_channels(settings))
        for minute in (30, 36, 42, 48, 54, 59):
            daily.tick(AT.replace(minute=minute))
        row = get_sitrep(store.engine, DAY_ID)
        assert row is not None and row.state == "failed" and row.delivery[MAIL_TO]["attempts"] == 5
    finally:
        store.close()


def test_http_lists_and_returns_it_to_readers_only(settings: Settings, tmp_path: Path) -> None:
    from pingan.plans import PLANS_DIR
    from pingan.store.identity import IdentityStore
    from pingan.web.app import create_api
    from tests.integration.access_rig import PEOPLE, PLANS

    store = Store(settings.resolved_database_url)
    try:
        DailySitreps(store, settings, {}).tick(AT)  # no channels: stored, each delivery failed (not configured)
        identity = IdentityStore(store.engine)
        tokens = {}
        for role in (Role.viewer, Role.department_liaison):
            identity.add_user(PLANS.directory, PEOPLE[role], [role.value], "a-long-enough-password", "cli:tests")
            tokens[role] = identity.create_token(PEOPLE[role], [role.value], "cli:tests")[1]
        # The API signs people in against the shipped directory (the report's own plan names test people).
        app = create_api(settings.model_copy(update={"data_dir": tmp_path, "plans_dir": PLANS_DIR}), store,
                         tokens={"api": "intake-api", "metrics": "scraper"})
        with TestClient(app) as client:
            viewer = {"Authorization": f"Bearer {tokens[Role.viewer]}"}
            listed = client.get("/v1/sitreps", headers=viewer)
            assert listed.status_code == 200
            assert [(i["id"], i["state"]) for i in listed.json()["items"]] == [(DAY_ID, "failed")]
            one = client.get(f"/v1/sitreps/{DAY_ID}", headers=viewer)
            assert one.status_code == 200 and one.json()["report"]["incidents"] == 1
            html = client.get(f"/v1/sitreps/{DAY_ID}?format=html", headers=viewer)
            assert html.status_code == 200 and html.text.count("<svg") == 4
            assert client.get("/v1/sitreps/sitrep-day-1999-01-01", headers=viewer).status_code == 404
            assert client.get(f"/v1/sitreps/{DAY_ID}?format=docx", headers=viewer).status_code == 422
            if shutil.which("chromium"):
                pdf = client.get(f"/v1/sitreps/{DAY_ID}?format=pdf", headers=viewer)
                assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
                assert len(PdfReader(io.BytesIO(pdf.content)).pages) >= 1
            liaison = {"Authorization": f"Bearer {tokens[Role.department_liaison]}"}
            assert client.get("/v1/sitreps", headers=liaison).status_code == 403
            assert client.get("/v1/sitreps").status_code == 401
    finally:
        store.close()
