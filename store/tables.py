"""The database schema: the system of record. The broker only carries what is written here first.

The tables of releases and sitreps (store/tables_releases.py) and of trends (store/tables_trends.py) are in modules of
their own on the same metadata (store/table_types.py) and importable from here."""

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pingan.store.table_types import UtcDateTime, metadata  # noqa: F401 (imported from here too)

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


# Split out to keep modules short; imported here (after `metadata`) so every table is on it and importable from here.
from pingan.store.tables_releases import release_broadcasts, releases, sitreps, sms_subscriptions  # noqa: E402, F401
from pingan.store.tables_trends import trend_alarms, trend_counts, trend_reports  # noqa: E402, F401
