"""The tables of trend early warning (issue 18): each counted report, the counts per series and slot, and the
warnings raised. Part of the one schema (store/table_types.py's `metadata`); store/tables.py re-exports them."""

from sqlalchemy import Column, Index, Integer, String, Table, Text

from pingan.store.table_types import UtcDateTime, metadata

# Trend early warning (issue 18, store/trends.py). Each report counted once, by its triage event id, with the
# areas of its path (" code code … ", so one LIKE finds the reports behind an area's series) and its slots.
trend_reports = Table(
    "trend_reports",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # actual, exercise, test: counted apart
    Column("category", String(64), nullable=False),
    Column("subtype", String(64), nullable=False),
    Column("areas", String(400), nullable=False),
    Column("hourly_slot", Integer, nullable=False),
    Column("daily_slot", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
Index("ix_trend_reports_daily", trend_reports.c.status, trend_reports.c.daily_slot)
Index("ix_trend_reports_hourly", trend_reports.c.status, trend_reports.c.hourly_slot)

# The counts per series and interval slot (handlers/trends/series.py), kept up to date in the triage batch's
# transaction: a restart loses no history. subtype '' is the whole category.
trend_counts = Table(
    "trend_counts",
    metadata,
    Column("status", String(16), primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("area", String(32), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("subtype", String(64), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The warning raised for a series' area and kind (its dedup key): one open warning at a time; later alarms update
# the row (how many, the latest evidence) instead of raising another incident.
trend_alarms = Table(
    "trend_alarms",
    metadata,
    Column("status", String(16), primary_key=True),
    Column("dedup_key", String(300), primary_key=True),
    Column("incident_id", String(64), nullable=False),  # the warning's id (proposed at intake, kept by triage)
    Column("event_id", String(64), nullable=False),  # its outbox event
    Column("raised_at", UtcDateTime, nullable=False),
    Column("last_alarm_at", UtcDateTime, nullable=False),
    Column("alarms", Integer, nullable=False),
    Column("last_evidence", Text, nullable=False),  # JSON: series, statistic, threshold, count, baseline
)
