"""The database schema: the system of record. The broker only carries what is written here first."""

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (text) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

# Accepted intake events (transactional outbox). A row exists before anyone is told "accepted".
outbox = Table(
    "outbox",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("proposed_incident_id", String(64), nullable=False, index=True),
    # The source's own message id: a retried webhook finds its first acceptance instead of making a second.
    Column("source_key", String(400), nullable=True, unique=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    Column("accepted_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
)
Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.accepted_at)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("dedup_key", String(300), nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("category", String(32), nullable=False),
    Column("subtype", String(48), nullable=False),
    Column("grade", String(4), nullable=False),
    Column("state", String(16), nullable=False),
    Column("title", String(500), nullable=False),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("last_report_at", UtcDateTime, nullable=False),
    Column("report_count", Integer, nullable=False),
    Column("body", Text, nullable=False),  # the whole Incident as JSON
)
# A report from another source looks for the open incident of its event (store.incidents.open_incidents_like).
Index("ix_incidents_event", incidents.c.category, incidents.c.subtype, incidents.c.last_report_at)

# One row per raw event triage has handled: replaying `incidents.raw` finds it and changes nothing.
triage_events = Table(
    "triage_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

# One row per incident whose response was decided: replaying `incidents` decides nothing twice.
responses = Table(
    "responses",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("plan_id", String(64), nullable=True),
    Column("plan_version", Integer, nullable=True),
    Column("grade", String(4), nullable=True),  # the level in force; a grade change re-plans from it
    Column("decided_at", UtcDateTime, nullable=False),
)

# The command-chain log. `at` and `details` are stored as the exact text that was hashed.
actions = Table(
    "actions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("details", Text, nullable=False),
    Column("plan_id", String(64), nullable=True),
    Column("plan_version", Integer, nullable=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The notification ledger: intent before sending, result after. Its key makes every send at most once.
notifications = Table(
    "notifications",
    metadata,
    Column("idempotency_key", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("recipient_id", String(100), nullable=False),
    Column("recipient_address", String(200), nullable=False, index=True),  # who may answer by phone
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider_id", String(100), nullable=True, index=True),
    Column("detail", Text, nullable=False, default=""),
    Column("body", Text, nullable=False),  # the whole Notification as JSON
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Escalation deadlines: rows, never only timers in memory, so they survive worker and broker restarts.
escalations = Table(
    "escalations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("plan_id", String(64), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("grade", String(4), nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # step, repeat, roll_call
    Column("attempt", Integer, nullable=False),
    Column("due_at", UtcDateTime, nullable=False, index=True),
    Column("cancel_on_ack", Integer, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, fired, cancelled
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("incident_id", "grade", "step_id", "kind", "attempt", name="uq_escalation_slot"),
)

# Who holds a command role for one incident after a handover (the plan's chain is the default).
role_holders = Table(
    "role_holders",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("since", UtcDateTime, nullable=False),
)

# Roll-call confirmations (点名): one row per person who confirmed a step.
confirmations = Table(
    "confirmations",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("step_id", String(64), primary_key=True),
    Column("person_id", String(64), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
)

# Drill runs (演练): which people an exercise may really reach. No row, or a run not live, or an ended run: the
# notifier sends that run's traffic to the sandbox only.
drill_runs = Table(
    "drill_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("title", String(500), nullable=False),
    Column("live", Integer, nullable=False),
    Column("participants", Text, nullable=False),  # JSON list of person ids
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
)

# A drill's clock (issue 14): plan minutes per real minute of the run's exercise incidents, given when the run is
# registered. A table of its own, not a column of drill_runs, so that a store made before it gains it (create_all
# adds tables, never columns).
drill_clocks = Table(
    "drill_clocks",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("time_scale", Float, nullable=False),
)

# The dead-man's switch (store/heartbeat.py): one row per beat, stamped by each stage it passes. Beats are not
# incidents and leave nothing in the log; old rows are pruned, the newest arrival per partition is kept.
heartbeats = Table(
    "heartbeats",
    metadata,
    Column("beat_id", String(64), primary_key=True),  # the outbox event id, "hb-…"
    Column("partition_no", Integer, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False, index=True),
    Column("triaged_at", UtcDateTime, nullable=True),
    Column("responded_at", UtcDateTime, nullable=True),
    Column("arrived_at", UtcDateTime, nullable=True),  # the notifier's stamp: the beat went all the way
)

# The watchdog's state, shared by every API process: one alert per outage however many watch.
heartbeat_monitor = Table(
    "heartbeat_monitor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("state", String(16), nullable=False),  # starting, ok, missing
    Column("changed_at", UtcDateTime, nullable=False),
    Column("last_sent_at", UtcDateTime, nullable=True),
)

# Who may run a singleton chore among several workers, until when (store/lease.py): the outbox relay, so that two
# workers do not both publish every accepted event.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("until", UtcDateTime, nullable=False),
)

# Every CAP message (cap:{sender}:{identifier}) triage applied to an incident: a later Update or Cancel may name any
# message of the chain, the latest Update as often as the first Alert (store/message_keys.py).
message_keys = Table(
    "message_keys",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
)

# People's accounts (issue 13; store/identity.py). A person of plans/directory/people.yaml, an argon2 password hash,
# roles (JSON list), a liaison's departments (JSON list), and the lockout counters.
users = Table(
    "users",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("roles", Text, nullable=False),
    Column("departments", Text, nullable=False),
    Column("disabled", Integer, nullable=False, default=0),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("lang", String(4), nullable=False, default="zh"),
    Column("totp_secret", String(64), nullable=True),  # unused while the second factor is SMS
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Server-side sessions (store/sessions.py): only a hash of the session id, which lives in the person's cookie.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("idle_timeout_s", Integer, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("second_factor_at", UtcDateTime, nullable=True),
)

# Personal API tokens (shown once, kept hashed); roles are a subset of the person's.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("roles", Text, nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
)

# One-time codes of the second factor, sent by SMS to the person's own number; kept salted and hashed.
one_time_codes = Table(
    "one_time_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("session_hash", String(64), nullable=False, index=True),
    Column("salt", String(32), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

# SMS and voice commands by the sender's message or call (Twilio's MessageSid / CallSid, store/phone_commands.py): a
# re-posted command finds its first answer here and runs nothing again (issue 14).
phone_commands = Table(
    "phone_commands",
    metadata,
    Column("key", String(80), primary_key=True),  # "sms:<MessageSid>" or "voice:<CallSid>"
    Column("phone", String(64), nullable=False),
    Column("reply", Text, nullable=True),  # the first answer, once it is made
    Column("at", UtcDateTime, nullable=False),
)

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
