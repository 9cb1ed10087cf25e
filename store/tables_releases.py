"""The tables of public information (issue 17): public SMS subscriptions, releases and their broadcasts, situation
reports. Part of the one schema (store/table_types.py's `metadata`); store/tables.py re-exports them."""

from sqlalchemy import Column, Integer, String, Table, Text

from pingan.store.table_types import UtcDateTime, metadata

# Public SMS subscriptions (issue 17, store/subscriptions.py): every subscribe and unsubscribe as it came, never
# overwritten. A number's subscriptions are its `subscribe` rows with no later `unsubscribe` of the same area or of
# every area ("*"): 退订 / TD / STOP end them all. `id` orders the history (times may tie).
sms_subscriptions = Table(
    "sms_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),  # subscribe, unsubscribe
    Column("area_code", String(32), nullable=False),  # a district area's code; "*" for every area
    Column("lang", String(4), nullable=False, default="zh"),  # what they wrote in: what they are sent
    Column("message_sid", String(64), nullable=True, unique=True),  # a re-posted message changes nothing
    Column("at", UtcDateTime, nullable=False),
)

# Release broadcasts planned (issue 17, store/subscriptions.py): one row per release whose SMS intents are in the
# ledger, written in the same transaction, so two workers or a restart never plan one twice.
release_broadcasts = Table(
    "release_broadcasts",
    metadata,
    Column("release_id", String(96), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("planned", Integer, nullable=False),  # intents written
    Column("planned_at", UtcDateTime, nullable=False),
    Column("throttled", Integer, nullable=False, default=0),  # provider 429s met while sending, summed per batch
)

# Public information releases (issue 17, store/releases.py): the whole Release as JSON in `body`, the fields that
# are searched beside it. Each change is committed with its log entry; the log keeps every revision's text.
releases = Table(
    "releases",
    metadata,
    Column("id", String(96), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # actual, exercise, test: the public feed skips all but actual
    Column("revision", Integer, nullable=False),
    Column("drafted_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True, index=True),
    Column("cap_identifier", String(200), nullable=True, unique=True),
    Column("body", Text, nullable=False),
)

# Situation reports (态势研判, issue 17; store/sitreps.py): one row per report the worker issued. The id is the period
# ("sitrep-day-2026-11-29"), so two workers or a restart find the day's row and issue it once.
sitreps = Table(
    "sitreps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("period_start", UtcDateTime, nullable=False, index=True),
    Column("period_end", UtcDateTime, nullable=False),
    Column("generated_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),  # sending, delivered, failed, stored (no recipients)
    Column("claimed_at", UtcDateTime, nullable=False),  # a delivery left `sending` this long ago is taken over
    Column("delivery", Text, nullable=False),  # JSON: recipient -> outcome
    Column("lang", String(4), nullable=False),
    Column("body", Text, nullable=False),  # the Sitrep as JSON
    Column("html", Text, nullable=False),
)
