"""The README's picture of the board, made the way a person sees it: `pingan up` with the embedded broker, five
incidents of every grade reported over HTTP, one acknowledged, the board in Debian's headless Chromium (zh-CN).

    python -m tests.e2e.console_screenshot docs/console-board.png

Needs chromium, Playwright and, for the Chinese to show, a CJK font (Debian's fonts-noto-cjk). Run by hand."""

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.test_console import CHROMIUM, PASSWORD, PERSON, add_user
from tests.fixtures.stack import Stack

REPORTS = [
    {"category": "natural_disaster", "subtype": "meteorological", "hazard": "typhoon", "grade": "II",
     "title": "台风“海燕”橙色预警：唐家湾沿海", "location": {"area_name": "唐家湾镇"}},
    {"category": "accident_disaster", "subtype": "fire", "grade": "III", "title": "科技园厂房起火",
     "location": {"area_name": "唐家"}},
    {"category": "accident_disaster", "subtype": "hazardous_chemicals", "grade": "I",
     "title": "金鼎工业区危化品仓库泄漏", "location": {"area_name": "金鼎"}},
    {"category": "public_health", "subtype": "infectious_disease", "grade": "IV", "title": "北沙小学发热病例聚集",
     "location": {"area_name": "北沙"}},
    {"category": "natural_disaster", "subtype": "flood_drought", "grade": "III", "title": "官塘下穿隧道积水",
     "location": {"area_name": "官塘"}},
]


def main(out: Path) -> None:
    stack = Stack(Path(tempfile.mkdtemp(prefix="pingan-shot-")))
    stack.up()
    try:
        add_user(stack, PERSON, ["duty_officer"], PASSWORD)
        ids = [stack.post("/v1/incidents", json=r).json()["id"] for r in REPORTS]
        time.sleep(4)  # triaged and planned
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1280, "height": 560}, locale="zh-CN").new_page()
            page.goto(stack.url + "/console/sign-in")
            page.fill("input[name=person]", PERSON)
            page.fill("input[name=password]", PASSWORD)
            page.click("#sign-in-form button[type=submit]")
            page.wait_for_selector("section.board")
            page.goto(f"{stack.url}/console/incidents/{ids[1]}")  # one acknowledged, so both states show
            page.click("#btn-ack")
            page.goto(stack.url + "/console/")
            page.wait_for_selector("#live-status.on")
            time.sleep(1.2)
            page.screenshot(path=str(out))
            browser.close()
    finally:
        stack.stop()
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console-board.png"))
