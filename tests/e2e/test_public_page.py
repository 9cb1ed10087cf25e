"""The public warning page /public/ (web/public.py, issue 17) in real headless Chromium (Debian's, driven by
Playwright) on a 390×844 phone with JavaScript off: the warning in force shows in zh-CN, the language link switches it
to English without a script, nothing is wider than the screen, the vendored stylesheet loads, and no request leaves
127.0.0.1. The API runs under uvicorn in a thread over a real SQLite store. Screenshots go to
tests/artifacts/public/ (ignored by git)."""

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn

from pingan.settings import Settings
from pingan.store import releases as release_store
from pingan.store.repository import Store
from pingan.web.app import create_api
from tests.fixtures.releases import SENDER, make_release

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "public"
TOKENS = {"api": "t-api", "alertmanager": "t-am", "cap": "t-cap", "metrics": "t-metrics"}
PHONE = {"width": 390, "height": 844}

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("public")
    store = Store(f"sqlite:///{data_dir / 'pingan.db'}")
    with store.engine.begin() as conn:
        release_store.save(conn, make_release(published_at=datetime.now(UTC) - timedelta(minutes=10)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(data_dir=data_dir, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None, cap_sender=SENDER)
    server = uvicorn.Server(uvicorn.Config(create_api(settings, store, tokens=dict(TOKENS)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)
    with contextlib.suppress(OSError):
        sock.close()
    store.close()


def test_the_page_on_a_phone_without_javascript(url: str) -> None:
    requested: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="zh-CN",
                                          extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            styles = []
            page.on("response", lambda r: styles.append(r.status) if r.url.endswith("/public.css") else None)
            page.goto(url + "/public/")
            warning = page.locator("article.warning")
            assert warning.count() == 1
            assert "台风橙色预警" in warning.inner_text() and "橙色预警" in warning.inner_text()
            assert "请留在室内" in warning.inner_text()
            for box in (warning.bounding_box(), page.locator("header").bounding_box()):
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
            assert styles == [200]
            shot(page, "public-zh")

            page.click("#lang-switch")  # a plain link: ?lang=en
            page.wait_for_url("**/public/?lang=en")
            text = page.locator("article.warning").inner_text()
            assert "Typhoon orange warning" in text and "Stay indoors" in text and "Orange warning" in text
            shot(page, "public-en")
            context.close()
        finally:
            browser.close()
    assert requested and all(r.startswith("http://127.0.0.1:") for r in requested), requested


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert path.stat().st_size > 5_000, f"{path} is (nearly) empty"
