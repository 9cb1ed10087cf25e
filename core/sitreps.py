"""Situation reports (态势研判) as a service: read the store, compute the figures, render HTML, JSON or PDF.

The CLI (`pingan sitrep`) calls `build` and `render`; the PDF is Debian's Chromium printing the HTML
(`chromium --headless --print-to-pdf`), the same browser the console tests drive, so nothing is installed for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pingan.handlers.plans.reader import read_plans
from pingan.handlers.sitreps.figures import compute
from pingan.handlers.sitreps.period import period_of
from pingan.handlers.sitreps.render import render_html
from pingan.schemas.common import utcnow
from pingan.schemas.plan import Plan
from pingan.schemas.sitrep import PeriodKind, Sitrep
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.store.sitrep_queries import read_sitrep_rows

Format = Literal["html", "pdf", "json"]
PDF_TIMEOUT_S = 120


class PdfUnavailable(RuntimeError):
    """No Chromium to print with, or it failed."""


def plans_by_id(plans_dir: Path) -> dict[str, Plan]:
    """Every plan that parses, lint or not: a report reads targets, it does not put a set in force."""
    return {p.id: p for p in read_plans(plans_dir).planset()}


def build(store: Store, settings: Settings, kind: PeriodKind, *, since: datetime | None = None,
          as_of: datetime | None = None, plans: dict[str, Plan] | None = None) -> Sitrep:
    now = as_of or utcnow()
    period = period_of(kind, now=now, tz=ZoneInfo(settings.timezone), since=since)
    rows = read_sitrep_rows(store.engine, period)
    return compute(period, rows, plans if plans is not None else plans_by_id(settings.plans_dir), as_of=now)


def chromium() -> str | None:
    return os.environ.get("PINGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(html: str) -> bytes:
    browser = chromium()
    if browser is None:
        raise PdfUnavailable("no chromium to print the PDF with (apt-get install chromium, or set PINGAN_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="pingan-sitrep-") as tmp:
        source, target = Path(tmp) / "sitrep.html", Path(tmp) / "sitrep.pdf"
        source.write_text(html, encoding="utf-8")
        # Its own profile directory, so a running browser of the same user is not asked to do it.
        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={target}",
                source.as_uri()]
        try:
            done = subprocess.run(args, capture_output=True, timeout=PDF_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfUnavailable(f"chromium could not print the PDF: {exc}") from exc
        if not target.exists() or target.stat().st_size == 0:
            raise PdfUnavailable(f"chromium made no PDF (exit {done.returncode}): "
                                 f"{done.stderr.decode(errors='replace')[-400:]}")
        return target.read_bytes()


def render(report: Sitrep, fmt: Format, lang: str = "zh") -> bytes:
    if fmt == "json":
        return report.model_dump_json(indent=2).encode()
    html = render_html(report, lang)
    return html_to_pdf(html) if fmt == "pdf" else html.encode()
