"""The console's areas pages in real headless Chromium (Debian's, driven by Playwright; issue 18, part 5): a duty
officer signs in, follows the board's link to the areas list, sees 唐家社区 first with its two open incidents, opens
it and sees them and its grids; on a 390×844 phone nothing is wider than the screen and nothing is fetched off
127.0.0.1. The API is create_api under uvicorn in a thread on 127.0.0.1, over the store test_areas_http.py's rig
fills (triage places the reports); no broker is needed for reading pages."""

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from pingan.handlers.access.permissions import Role
from tests.integration.access_rig import PASSWORD, PEOPLE
from tests.integration.test_areas_http import TANGJIA, AreasRig

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, AreasRig]]:
    rig = AreasRig(tmp_path, f"sqlite:///{tmp_path / 'areas.db'}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(rig.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    yield url, rig
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    rig.store.close()


def test_areas_pages_from_the_board_on_a_phone(served: tuple[str, AreasRig]) -> None:
    url, rig = served
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                          locale="zh-CN")
            requested: list[str] = []
            context.on("request", lambda request: requested.append(request.url))
            page = context.new_page()
            page.goto(url + "/console/")
            page.wait_for_url("**/console/sign-in**")
            page.fill("input[name=person]", PEOPLE[Role.duty_officer])
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in-form button[type=submit]")
            page.wait_for_selector("section.board")
            page.click("#board-areas")
            page.wait_for_selector("table.areas")
            first = page.locator("table.areas tbody tr").first
            assert first.get_attribute("data-code") == TANGJIA and "has-open" in (first.get_attribute("class") or "")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            first.locator("a").click()
            page.wait_for_selector("table.open-incidents")
            text = page.locator("table.open-incidents").inner_text()
            assert rig.fire in text and rig.cluster in text and rig.drill not in text
            assert page.locator("ul.children li").count() >= 4
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, "wider than the phone"
            off_host = [u for u in requested if not (u.startswith(url + "/") or u.startswith("data:"))]
            assert not off_host, off_host
            context.close()
        finally:
            browser.close()
