"""/readyz (issue 15): 503 with the reason until a worker holds its partitions and a heartbeat sent since then has
made the round trip; 200 after, and the first report then goes through without waiting for a consumer group.
`pingan up` prints its "ready" line once (tests/e2e/test_up.py)."""

from pathlib import Path

import httpx

from pingan.settings import Settings
from pingan.store.heartbeat import HeartbeatStore
from pingan.store.repository import Store
from tests.fixtures.stack import Proc, free_port, pingan_argv, pingan_env, wait_for


def test_readyz_is_503_until_a_worker_proves_the_pipeline_then_200(
        tmp_path: Path, broker_bootstrap: str, worker_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    # No dead-man's switch: readiness must not depend on its interval.
    env = pingan_env(tmp_path / "data", KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, PINGAN_HTTP_PORT=str(port),
                     PINGAN_HEARTBEAT_INTERVAL_S="0")
    url = f"http://127.0.0.1:{port}"
    api = Proc(pingan_argv("api"), env, tmp_path / "api.log")
    try:
        wait_for(lambda: _status(url + "/healthz") == 200, 60, 0.2, "the API's /healthz")
        response = httpx.get(url + "/readyz", timeout=5)
        assert response.status_code == 503, response.text
        assert response.json() == {"status": "not ready", "reason": "no worker holds the pipeline's partitions yet"}

        worker = worker_factory(env)
        try:
            wait_for(lambda: _status(url + "/readyz") == 200, 120, 0.1, "/readyz 200")
        except AssertionError:
            raise AssertionError(worker.log_tail() + "\n--- api ---\n" + api.log_tail()) from None
        body = httpx.get(url + "/readyz", timeout=5).json()
        assert body["status"] == "ready" and "round trip" in body["reason"]

        # Ready means consuming end to end: a report now is delivered without a consumer-group join in between.
        token = _intake_token(tmp_path / "data")
        accepted = httpx.post(url + "/v1/incidents", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                              json={"category": "accident_disaster", "subtype": "fire", "grade": "IV",
                                    "title": "readiness probe fire"})
        assert accepted.status_code == 202, accepted.text
        store = Store(Settings(data_dir=tmp_path / "data").resolved_database_url)
        try:
            wait_for(lambda: any(a.kind.value == "delivered" for a in store.timeline(accepted.json()["id"])),
                     30, 0.1, "the first report delivered")
            # A new assignment (a worker restarted) starts readiness over until its own round trip.
            HeartbeatStore(store).mark_assigned(_now())
            assert httpx.get(url + "/readyz", timeout=5).status_code == 503
        finally:
            store.close()
    finally:
        api.stop()


def _now():  # type: ignore[no-untyped-def]
    from pingan.schemas.common import utcnow

    return utcnow()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _intake_token(data_dir: Path) -> str:
    import json

    return str(json.loads((data_dir / "intake-tokens.json").read_text())["api"])
