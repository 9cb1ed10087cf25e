"""The intake guards in-process, on a real store: tokens, limits, 503 when the store cannot commit, idempotency."""

import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from twilio.request_validator import RequestValidator

from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.web.app import create_api

TOKENS = {"api": "t-api", "alertmanager": "t-am", "cap": "t-cap"}
REPORT = {"category": "accident_disaster", "subtype": "fire", "grade": "IV", "title": "测试"}


def client_for(tmp_path: Path, db_url: str, **settings: object) -> tuple[TestClient, Store]:
    store = Store(db_url)
    app = create_api(Settings(data_dir=tmp_path, **settings), store, tokens=TOKENS)
    return TestClient(app), store


def auth(source: str = "api") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[source]}"}


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, sqlite_url: str) -> None:
    client, _ = client_for(tmp_path, sqlite_url, intake_rate_per_minute=3)
    codes = [client.post("/v1/incidents", json=REPORT, headers=auth()).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    limited = client.post("/v1/incidents", json=REPORT, headers=auth())
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # Each source has its own allowance.
    assert client.post("/v1/intake/cap", content=b"<x/>", headers=auth("cap")).status_code == 422


def test_body_over_the_limit_is_413_before_parsing(tmp_path: Path, sqlite_url: str) -> None:
    client, store = client_for(tmp_path, sqlite_url, intake_max_body_bytes=2048)
    big = {**REPORT, "description": "火" * 3000}
    assert client.post("/v1/incidents", json=big, headers=auth()).status_code == 413
    assert store.unpublished() == []


def test_store_that_cannot_commit_gives_503_not_500(tmp_path: Path, sqlite_url: str) -> None:
    client, store = client_for(tmp_path, sqlite_url)
    # A database that refuses connections: nothing can be committed, so nothing may be acknowledged.
    store.engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    response = client.post("/v1/incidents", json=REPORT, headers=auth())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


def test_422_names_the_field(tmp_path: Path, db_url: str) -> None:
    client, _ = client_for(tmp_path, db_url)
    response = client.post("/v1/incidents", json={**REPORT, "subtype": "typhoon"}, headers=auth())
    assert response.status_code == 422
    assert response.json()["field"] == "subtype"
    bad_json = client.post("/v1/incidents", content=b'{"category": ', headers=auth())
    assert bad_json.status_code == 422
    assert "line 1 column 13" in bad_json.json()["error"]


@pytest.mark.parametrize("source,path", [("alertmanager", "/v1/intake/alertmanager"), ("cap", "/v1/intake/cap")])
def test_wrong_source_token_is_401(tmp_path: Path, sqlite_url: str, source: str, path: str) -> None:
    client, _ = client_for(tmp_path, sqlite_url)
    assert client.post(path, content=b"{}", headers=auth("api")).status_code == 401
    assert client.post(path, content=b"{}").status_code == 401


def test_generated_tokens_are_kept_in_the_data_dir(tmp_path: Path, sqlite_url: str) -> None:
    from pingan.web.guards import load_tokens

    first = load_tokens(Settings(data_dir=tmp_path))
    again = load_tokens(Settings(data_dir=tmp_path))
    assert first == again and set(first) == {"api", "alertmanager", "cap", "metrics"}  # metrics: the scraper's
    assert (tmp_path / "intake-tokens.json").stat().st_mode & 0o077 == 0
    configured = load_tokens(Settings(data_dir=tmp_path, intake_tokens="api=abc"))
    assert configured["api"] == "abc" and configured["cap"] == first["cap"]
    assert load_tokens(Settings(data_dir=tmp_path, metrics_token="scrape"))["metrics"] == "scrape"


# ── Issue 14: nothing one request sends can stall the API; junk cannot use up a sender's allowance ───────────────

TWILIO_TOKEN = "t-twilio-" + "x" * 16
SMS = "/v1/intake/twilio/sms"
CAP_HEAD = ('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{ident}</identifier>'
            "<sender>limits@example.org</sender><sent>2026-08-01T08:00:00+08:00</sent><status>Actual</status>"
            "<msgType>Alert</msgType><scope>Public</scope>")
SQUARE = "22.30,113.50 22.30,113.60 22.40,113.60 22.40,113.50 22.30,113.50"  # 5 points, closed


def cap_message(infos: int = 1, areas: int = 1, polygon: str = SQUARE, ident: str = "lim-1") -> bytes:
    area = f"<area><areaDesc>唐家湾</areaDesc><polygon>{polygon}</polygon></area>"
    info = ("<info><category>Met</category><event>Typhoon</event><urgency>Immediate</urgency>"
            f"<severity>Severe</severity><certainty>Observed</certainty>{area * areas}</info>")
    return (CAP_HEAD.format(ident=ident) + info * infos + "</alert>").encode()


def webhook(alerts: int) -> dict[str, object]:
    return {"version": "4", "groupKey": f"limits-{alerts}", "status": "firing",
            "alerts": [{"labels": {"alertname": "DiskFull", "i": str(i)}} for i in range(alerts)]}


def test_cap_and_alertmanager_over_a_count_limit_are_413_naming_the_setting(tmp_path: Path, sqlite_url: str) -> None:
    client, store = client_for(tmp_path, sqlite_url, cap_max_infos=2, cap_max_areas_per_info=2,
                               cap_max_polygon_points=5, alertmanager_max_alerts=3)
    cases = [
        (cap_message(infos=3), "alert.info", "PINGAN_CAP_MAX_INFOS", 2, 3),
        (cap_message(areas=3), "alert.info[0].area", "PINGAN_CAP_MAX_AREAS_PER_INFO", 2, 3),
        (cap_message(polygon=SQUARE.replace("22.30,113.50 22.30,113.60", "22.30,113.50 22.29,113.55 22.30,113.60")),
         "alert.info.area.polygon", "PINGAN_CAP_MAX_POLYGON_POINTS", 5, 6),
    ]
    for body, field, setting, limit, count in cases:
        response = client.post("/v1/intake/cap", content=body, headers=auth("cap"))
        assert response.status_code == 413, response.text
        error = response.json()
        assert (error["field"], error["setting"], error["limit"], error["count"]) == (field, setting, limit, count)
        assert setting in error["error"] and f"over the limit of {limit}" in error["error"]
    within = client.post("/v1/intake/cap", content=cap_message(infos=2, areas=2), headers=auth("cap"))
    assert within.status_code == 202, within.text

    over = client.post("/v1/intake/alertmanager", json=webhook(4), headers=auth("alertmanager"))
    assert over.status_code == 413
    assert over.json()["setting"] == "PINGAN_ALERTMANAGER_MAX_ALERTS" and "max_alerts" in over.json()["error"]
    assert client.post("/v1/intake/alertmanager", json=webhook(3), headers=auth("alertmanager")).status_code == 202
    assert len(store.unpublished()) == 1 + 3  # nothing of the refused bodies was kept


def test_a_parse_over_its_cpu_budget_is_413_naming_the_setting(tmp_path: Path, sqlite_url: str) -> None:
    # Limits raised out of the way: the budget is what stops these. 3,000 infos take ~20 ms of CPU to check.
    client, store = client_for(tmp_path, sqlite_url, cap_max_infos=100_000, alertmanager_max_alerts=100_000,
                               intake_parse_cpu_budget_s=0.001)
    empty_infos = (CAP_HEAD.format(ident="budget") + "<info/>" * 3000 + "</alert>").encode()
    response = client.post("/v1/intake/cap", content=empty_infos, headers=auth("cap"))
    assert response.status_code == 413, response.text[:300]
    assert response.json()["setting"] == "PINGAN_INTAKE_PARSE_CPU_BUDGET_S"
    assert "took more than 0.001 s of CPU" in response.json()["error"]
    many = client.post("/v1/intake/alertmanager", json=webhook(2000), headers=auth("alertmanager"))
    assert many.status_code == 413 and many.json()["setting"] == "PINGAN_INTAKE_PARSE_CPU_BUDGET_S"
    assert store.unpublished() == []


def sms_form(text: str = "唐家社区仓库着火了，有浓烟") -> dict[str, str]:
    return {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "b" * 32, "From": "+8613900000001",
            "To": "+8612345", "Body": text, "NumMedia": "0"}


def signed(form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature("http://testserver" + SMS, form)}


def test_unsigned_junk_cannot_use_up_the_sms_hotline(tmp_path: Path, sqlite_url: str) -> None:
    client, _ = client_for(tmp_path, sqlite_url, intake_rate_per_minute=5, intake_unauthenticated_rate_per_minute=3,
                           twilio_auth_token=TWILIO_TOKEN)
    # Unsigned and forged requests from one address, more than the hotline's whole allowance.
    junk = [client.post(SMS, data=sms_form(), headers={"X-Twilio-Signature": "forged"}).status_code
            for _ in range(10)]
    slowed = client.post(SMS, data=sms_form())
    # Real SMS still get through: the hotline's allowance was not touched by any of that.
    real = [client.post(SMS, data=form, headers=signed(form)) for form in (sms_form() for _ in range(5))]
    assert [r.status_code for r in real] == [200] * 5, [r.text for r in real]
    assert all("INC-" in r.text for r in real)
    # The junk was refused, and once past its own budget its address was slowed down.
    assert junk == [403] * 3 + [429] * 7
    assert slowed.status_code == 429 and "PINGAN_INTAKE_UNAUTHENTICATED_RATE_PER_MINUTE" in slowed.text
    assert int(slowed.headers["Retry-After"]) >= 1
    # The hotline's own allowance still holds, counted on signed requests only.
    sixth = sms_form()
    over = client.post(SMS, data=sixth, headers=signed(sixth))
    assert over.status_code == 429 and "PINGAN_INTAKE_RATE_PER_MINUTE" in over.text


def test_wrong_tokens_do_not_use_up_a_sources_allowance(tmp_path: Path, sqlite_url: str) -> None:
    client, _ = client_for(tmp_path, sqlite_url, intake_rate_per_minute=3, intake_unauthenticated_rate_per_minute=2)
    wrong = [client.post("/v1/incidents", json=REPORT, headers={"Authorization": "Bearer nope"}).status_code
             for _ in range(5)]
    assert wrong == [401, 401, 429, 429, 429]
    right = [client.post("/v1/incidents", json=REPORT, headers=auth()).status_code for _ in range(4)]
    assert right == [202, 202, 202, 429]
