"""The console's reports page (态势研判, issue 17 part 3): the issued daily reports listed and opened, a report made
now for a week, in zh and en; a department liaison gets neither the link nor the page (the report is district-wide).
The person is given by overriding web.auth.principal, as in test_console_pages.py."""

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pypdf import PdfReader

from pingan.settings import Settings
from pingan.sitrep_daily import DailySitreps
from tests.integration.test_console_pages import FIRE_LIAISON, Console, console, report  # noqa: F401 - fixture


def test_reports_page_lists_opens_and_makes_reports(console: Console, tmp_path: Path) -> None:  # noqa: F811
    report(console.store, "III", "仓库起火")
    now = datetime.now(UTC)
    daily = DailySitreps(console.store, Settings(data_dir=tmp_path, timezone="Asia/Shanghai", sitrep_daily_at="00:00"),
                         {})
    issued = daily.tick(now + timedelta(days=1))  # tomorrow's run: today's report, with the fire in it
    assert issued is not None
    board = console.client.get("/console/").text
    assert 'href="/console/reports"' in board and "态势研判" in board
    page = console.client.get("/console/reports")
    assert page.status_code == 200 and issued in page.text and "已存档" in page.text
    opened = console.client.get(f"/console/reports/{issued}")
    assert opened.status_code == 200 and opened.text.count("<svg") == 3 and "仓库起火" in opened.text
    assert "default-src 'none'" in opened.headers["content-security-policy"]
    week = console.client.get("/console/reports/now", params={"period": "week", "lang": "en",
                                                              "since": (now - timedelta(days=3)).date().isoformat()})
    assert week.status_code == 200 and "Situation report (weekly)" in week.text and "仓库起火" in week.text
    bad = console.client.get("/console/reports/now", params={"period": "year"})
    assert bad.status_code == 400
    bad_since = console.client.get("/console/reports/now", params={"period": "day", "since": "yesterday"})
    assert bad_since.status_code == 400 and "--since" in bad_since.text
    assert console.client.get("/console/reports/sitrep-day-1999-01-01").status_code == 404
    if shutil.which("chromium"):
        pdf = console.client.get(f"/console/reports/{issued}", params={"format": "pdf"})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert len(PdfReader(io.BytesIO(pdf.content)).pages) >= 1
        now_pdf = console.client.get("/console/reports/now", params={"period": "day", "format": "pdf"})
        assert now_pdf.status_code == 200 and now_pdf.content.startswith(b"%PDF")


def test_a_department_liaison_gets_no_reports(console: Console) -> None:  # noqa: F811
    console.person = FIRE_LIAISON
    assert 'href="/console/reports"' not in console.client.get("/console/").text
    assert console.client.get("/console/reports").status_code == 403
    assert console.client.get("/console/reports/now").status_code == 403
