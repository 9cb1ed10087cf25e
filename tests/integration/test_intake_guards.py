"""The intake guards in-process, on a real store: tokens, limits, 503 when the store cannot commit, idempotency."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

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
