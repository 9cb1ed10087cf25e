"""What the trend early-warning stage adds to the triage batch: ms per report with and without it, SQLite and
PostgreSQL.

Run by hand: `python bench/trend_stage.py [--reports 2000] [--spacing-s 7200] [--pg URL]`. Public-health reports
from the 12 communities of plans/areas/tangjiawan.geojson go through `streams.batches.triage_batch` in batches of
200 (the agent's BATCH_MAX), each with its own dedup key, once with the shipped rules' TrendWatch and once without,
each into a fresh database. `--spacing-s` is the time between two reports' intake times: 7200 (the default) gives
about one report a community a day, so no series alarms and the figure is the counting and the detectors' read-back;
1 puts them all in one day, where every report alarms again (the worst case).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import create_engine, text

from pingan.handlers.incidents.placement import Placer
from pingan.handlers.plans.lint_trends import read_trend_rules
from pingan.plans import PLANS_DIR
from pingan.schemas.areas import district_from_geojson
from pingan.schemas.events import RawEvent
from pingan.schemas.incident import IncidentReport, Location
from pingan.schemas.taxonomy import Source
from pingan.store.outbox import new_incident_id
from pingan.store.repository import Store
from pingan.streams.batches import BATCH_MAX, triage_batch
from pingan.streams.trends import TrendWatch

START = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def reports(n: int, spacing_s: float, communities: list[str]) -> list[RawEvent]:
    out = []
    for i in range(n):
        report = IncidentReport(source=Source.hotline_sms, category="public_health",
                                subtype="food_occupational_poisoning", grade="IV", title=f"拉肚子 {i}",
                                location=Location(area_code=communities[i % len(communities)]),
                                dedup_key=f"bench:{uuid.uuid4().hex}")
        out.append(RawEvent(event_id=uuid.uuid4().hex, proposed_incident_id=new_incident_id(),
                            received_at=START + timedelta(seconds=i * spacing_s), report=report))
    return out


def ms_per_report(url: str, events: list[RawEvent], watch: TrendWatch | None, placer: Placer) -> float:
    store = Store(url)
    took = 0.0
    try:
        for first in range(0, len(events), BATCH_MAX):
            began = time.perf_counter()
            triage_batch(store, events[first:first + BATCH_MAX], timedelta(minutes=30), {}, None, placer, watch)
            took += time.perf_counter() - began
    finally:
        store.close()
    return 1000 * took / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--spacing-s", type=float, default=7200.0)
    parser.add_argument("--pg", default=PG_DEFAULT, help="a PostgreSQL server URL to create the databases on; '' skips")
    args = parser.parse_args()
    district = district_from_geojson((PLANS_DIR / "areas" / "tangjiawan.geojson").read_text(), "tangjiawan")
    placer = Placer(district)
    communities = [a.code for a in district.areas if a.level == "community"]
    rules, _ = read_trend_rules(PLANS_DIR)
    events = reports(args.reports, args.spacing_s, communities)
    print(f"{args.reports} reports, batches of {BATCH_MAX}, {args.spacing_s:g} s apart, {len(communities)} communities")
    with TemporaryDirectory() as tmp:
        for label, watch in (("without the stage", None), ("with the stage", TrendWatch(rules, "raw", placer))):
            url = f"sqlite:///{Path(tmp) / (label.replace(' ', '-') + '.db')}"
            print(f"SQLite      {label:<18} {ms_per_report(url, events, watch, placer):6.2f} ms per report")
    if args.pg:
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        for label, watch in (("without the stage", None), ("with the stage", TrendWatch(rules, "raw", placer))):
            name = f"bench_trend_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.pg.rsplit("/", 1)[0] + "/" + name
                print(f"PostgreSQL  {label:<18} {ms_per_report(url, events, watch, placer):6.2f} ms per report")
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
