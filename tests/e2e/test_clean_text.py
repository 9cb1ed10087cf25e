"""Clean text out, end to end (issue 14, finding 7): `pingan up`, an incident filed over HTTP whose title holds a
newline followed by a forged log line and an ANSI escape; `pingan timeline` and the worker's log show it on one line,
escaped, and the Chinese part intact."""

from pathlib import Path

from tests.fixtures.stack import Stack, cli, wait_for

FORGED = "2026-01-01 forged line"
TITLE = f"仓库起火\n{FORGED} \x1b[31mred\x1b[0m"
ESCAPED = f"仓库起火\\x0a{FORGED} \\x1b[31mred\\x1b[0m"


def forged(text: str) -> list[str]:
    """Lines a reader would take for lines of their own: starting with the forged text, or holding a raw ESC."""
    return [line for line in text.splitlines() if line.startswith(FORGED) or "\x1b" in line]


def test_a_title_with_a_newline_and_an_ansi_escape_stays_on_one_line(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack.up()
    try:
        reported = stack.post("/v1/incidents", json={
            "category": "accident_disaster", "subtype": "fire", "grade": "III", "title": TITLE,
            "location": {"area_code": "440402100001", "area_name": "唐家社区"}})
        assert reported.status_code in (200, 201, 202), reported.text
        incident_id = reported.json()["id"]
        wait_for(lambda: stack.delivered(incident_id), 60, 0.2, "the console notification")
        timeline = cli(stack.env, "timeline", incident_id)
        assert timeline.returncode == 0, timeline.stderr
        worker_log = (Path(stack.env["PINGAN_DATA_DIR"]) / "logs" / "worker.log").read_text(encoding="utf-8")
    finally:
        stack.stop()
    assert forged(timeline.stdout) == [], timeline.stdout
    assert ESCAPED in timeline.stdout.splitlines()[0]
    assert forged(worker_log) == [], [line for line in worker_log.splitlines() if "仓库起火" in line]
    assert any(ESCAPED in line for line in worker_log.splitlines()), worker_log[-3000:]
