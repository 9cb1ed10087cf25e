"""PINGAN_INTAKE_RATE_PER_MINUTE is an allowance per intake token (`source:name`, web/intake_tokens.py), not per
source: two agencies with their own CAP tokens must not spend each other's. Through the HTTP app on a real store
(SQLite); the CAP messages are the OASIS thunderstorm sample (../shared/samples/cap), read where it is.
"""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.web.app import create_api
from tests.fixtures.cap_chain import CAP_DIR, QIAO_AREA, SENDER, cap_message

pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir(), reason=f"samples not found at {CAP_DIR}")
OTHER = "warnings@other-agency.example.org"
TOKENS = f"api=t-api,cap:nws=t-nws|{SENDER},cap:cma=t-cma|{OTHER},alertmanager=t-am"


def message(sender: str, n: int) -> bytes:
    return cap_message(identifier=f"RATE-{sender[:3]}-{n}", sent=f"2026-08-01T08:{n:02d}:00+08:00", sender=sender,
                       references="", area=QIAO_AREA)


def post(client: TestClient, token: str, body: bytes) -> "object":
    return client.post("/v1/intake/cap", content=body, headers={"Authorization": f"Bearer {token}"})


def test_each_named_cap_token_has_its_own_allowance(tmp_path: Path, sqlite_url: str) -> None:
    client = TestClient(create_api(Settings(data_dir=tmp_path, intake_tokens=TOKENS, intake_rate_per_minute=3),
                                   Store(sqlite_url)))
    nws = [post(client, "t-nws", message(SENDER, n)) for n in range(4)]
    assert [r.status_code for r in nws] == [202, 202, 202, 429], [r.text for r in nws]
    limited = nws[-1]
    # The 429 names the token that used up its allowance, the setting, and when to come back.
    retry_after = int(limited.headers["Retry-After"])
    assert retry_after >= 1
    assert "cap:nws" in limited.text and "PINGAN_INTAKE_RATE_PER_MINUTE" in limited.text
    assert f"retry after {retry_after} s" in limited.text
    # The other agency's token was not touched: its whole allowance is still there.
    cma = [post(client, "t-cma", message(OTHER, n)) for n in range(4)]
    assert [r.status_code for r in cma] == [202, 202, 202, 429], [r.text for r in cma]
    assert "cap:cma" in cma[-1].text and "cap:nws" not in cma[-1].text
    # And neither touched the other sources'.
    api = client.post("/v1/incidents", headers={"Authorization": "Bearer t-api"},
                      json={"category": "accident_disaster", "subtype": "fire", "grade": "IV", "title": "测试"})
    assert api.status_code == 202, api.text
