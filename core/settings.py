"""Settings: environment variables with the prefix PINGAN_, plus an optional TOML file (PINGAN_CONFIG)."""

import json
import os
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pingan.plans import PLANS_DIR

if TYPE_CHECKING:
    from pingan.schemas.adapters.cap_sign import CapSigner

# In the data dir: where `pingan up` writes its embedded broker's address, so CLI commands (tail) can find it.
BROKER_ADDRESS_FILE = "broker.address"
# Sends in flight at once per channel. Twilio's REST API takes concurrent requests (its 429 says when not), and a
# webhook or mail server a few; the console writes one file, so it stays serial.
NOTIFY_CONCURRENCY: dict[str, int] = {"twilio_sms": 50, "twilio_voice": 20, "webhook": 20, "email": 10,
                                      "console": 1, "sandbox": 1}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINGAN_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("var"), description="Where SQLite, the console sink and logs live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; postgresql://… for production. Default: SQLite in data_dir"
    )
    plans_dir: Path = Field(default=PLANS_DIR, description="Directory of YAML response plans")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "PINGAN_KAFKA_BOOTSTRAP_SERVERS"),
        description="Unset: `pingan up` starts the embedded tansu broker on 127.0.0.1 and a free port",
    )
    broker_kind: Literal["auto", "tansu", "kafka"] = Field(
        default="auto",
        description="Which broker KAFKA_BOOTSTRAP_SERVERS is: auto asks it (streams/broker_profile.py); the "
        "workarounds for the embedded tansu broker follow from it",
    )
    topic_replication_factor: int | None = Field(
        default=None, ge=1, le=10,
        description="Replicas of each topic Pingan creates; unset: 1 on tansu, min(3, brokers) on Apache Kafka",
    )
    topic_prefix: str = Field(default="", description="Prepended to every topic name (isolates stacks and tests)")
    app_id: str = Field(default="pingan", description="faust app id, also the consumer group")
    consumer_fetch_wait_ms: int | None = Field(
        default=None, ge=1, le=5000,
        description="faust consumer fetch wait; unset: 20 ms on tansu (it never answers a fetch early), 500 ms on "
        "Apache Kafka (see docs/architecture.md)",
    )
    takeover_republish: bool | None = Field(
        default=None,
        description="After every rebalance, re-publish the store's unfinished work of the partitions assigned "
        "(streams/takeover.py); unset: on for tansu, off for Apache Kafka",
    )
    broker_session_timeout_s: float = Field(default=10.0, gt=0)
    broker_heartbeat_interval_s: float = Field(default=2.0, gt=0)
    correlation_window_s: float = Field(
        default=3600.0, gt=0,
        description="Reports join an open incident (same dedup_key, or the same event from another source) within it")
    relay_poll_interval_s: float = Field(default=0.05, gt=0, description="Outbox relay poll interval")
    console_sink: Path | None = Field(default=None, description="Console channel's append-only file; default data_dir")
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_api_base_url: str | None = Field(default=None, description="Override the Twilio API host (tests)")
    public_url: str | None = Field(
        default=None, description="The URL Twilio calls (behind a proxy); Twilio signatures are checked against it"
    )
    intake_tokens: str | None = Field(
        default=None,
        description="Bearer tokens, `source[:name]=token[|binding…]` comma-separated (`api=…,cap:cma=…|SENDER,"
        "alertmanager:prod=…`): a CAP token may use only the <sender> values it lists (`*`: any), an Alertmanager "
        "token's name namespaces its alerts; a source without one gets a token generated into "
        "<data dir>/intake-tokens.json (web/intake_tokens.py)",
    )
    intake_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Larger bodies get 413")
    intake_rate_per_minute: int = Field(default=6000, ge=1,
                                        description="Per intake token (source:name); more gets 429 with Retry-After")
    # Issue 14: no request may stall the API. Counted right after the XML/JSON parser, before any Python check.
    intake_unauthenticated_rate_per_minute: int = Field(
        default=60, ge=1, description="Requests that fail authentication (token, Twilio signature) per client "
        "address a minute; more gets 429. They never use up a source's own allowance")
    cap_max_infos: int = Field(default=100, ge=1, description="<info> blocks in one CAP message; more gets 413")
    cap_max_areas_per_info: int = Field(default=500, ge=1, description="<area> blocks in one <info>; more gets 413")
    cap_max_polygon_points: int = Field(default=10_000, ge=4, description="Points of one CAP <polygon>; more: 413")
    alertmanager_max_alerts: int = Field(
        default=1000, ge=1, description="Alerts in one Alertmanager webhook; more gets 413 (set max_alerts in the "
        "receiver's webhook_config below it)")
    intake_parse_cpu_budget_s: float = Field(
        default=2.0, gt=0, description="CPU seconds one CAP, Alertmanager or large JSON body may take to parse (off "
        "the event loop); more gets 413")
    supervisor_health_interval_s: float = Field(
        default=2.0, ge=0, description="`pingan up` asks the API's /healthz this often; 0: only a part that exits "
        "is restarted")
    supervisor_health_timeout_s: float = Field(default=2.0, gt=0, description="A /healthz slower than this failed")
    supervisor_health_failures: int = Field(
        default=3, ge=1, description="Failed /healthz in a row after which `pingan up` restarts the API")
    supervisor_health_grace_s: float = Field(
        default=60.0, ge=0, description="How long a (re)started API may take to answer /healthz the first time")
    intake_config: Path | None = Field(
        default=None, description="YAML with intake mappings: sms keywords, areas, CAP and Alertmanager tables"
    )
    district_areas: Path = Field(
        default=PLANS_DIR / "areas" / "tangjiawan.geojson",
        description="GeoJSON of the district's areas (codes, names, aliases, polygons): a CAP alert none of whose "
        "areas meets them is recorded as outside our area and activates no plan (handlers/incidents/areas.py)",
    )
    district_area_check: bool = Field(
        default=True, description="false: no area check; every alert is treated as the district's")
    cap_feeds: str | None = Field(default=None, description="Comma-separated Atom/RSS feed URLs of CAP messages, "
                                  "each `url[|sender…]`: with senders, only their messages are taken")
    cap_feed_interval_s: float = Field(default=60.0, gt=0, description="How often each CAP feed is polled")
    plan_reload_interval_s: float = Field(default=1.0, gt=0, description="How often the worker checks plans_dir")
    sending_lease_s: float = Field(
        default=60.0, gt=0,
        description="A notification left `sending` longer than this lost its worker (killed between claim and "
        "result); another worker's scheduler reconciles it with the channel. Longer than any channel's timeout",
    )
    escalation_time_scale: float = Field(
        default=1.0, gt=0, description="Deadlines of incidents without a drill clock run this many times faster "
        "(tests fast-forward a stack with it; a drill's incidents keep their run's --speed; keep 1 in production)"
    )
    notify_concurrency: dict[str, int] = Field(
        default_factory=dict,
        description="Sends in flight at once per channel, over NOTIFY_CONCURRENCY's defaults (twilio_sms 50, "
        "twilio_voice 20, webhook 20, email 10, console and sandbox 1); JSON, e.g. {\"twilio_sms\": 100}. "
        "One person's messages always go one after the other, in order; a webhook receiver's, per incident",
    )
    twilio_sender_mps: float | None = Field(
        default=None, gt=0,
        description="Messages per second each Twilio sender number may start (a token bucket; beyond it sends "
        "queue, they never fail); unset: no local limit, Twilio's 429 alone paces the notifier",
    )
    notify_batch_size: int = Field(
        default=500, ge=1, description="Notification orders the notifier takes from its topic at once and claims "
        "in one transaction",
    )
    webhook_secret: str | None = Field(default=None, description="HMAC key for the webhook channel's signature")
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_sender: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    drill_live_participants: str | None = Field(
        default=None, description="Person ids that exercise traffic may really reach; unset: all of it is sandboxed"
    )
    metrics_port: int = Field(default=9108, ge=0, le=65535,
                              description="The worker's Prometheus /metrics port; 0 disables (the API serves /metrics)")
    heartbeat_interval_s: float = Field(
        default=30.0, ge=0,
        description="Dead-man's switch: a heartbeat goes through the whole pipeline this often; 0 disables it",
    )
    heartbeat_missed_intervals: float = Field(
        default=2.0, ge=1, description="Alert when no heartbeat has completed the pipeline for this many intervals")
    heartbeat_grace_s: float = Field(
        default=60.0, ge=0, description="After the API starts, how long the pipeline may take to pass a first beat")
    heartbeat_alert_webhook_url: str | None = Field(
        default=None, description="Also POST heartbeat alerts here (signed like the webhook channel)")
    heartbeat_alert_webhook_secret: str | None = Field(
        default=None, description="HMAC key for heartbeat alert webhooks; default PINGAN_WEBHOOK_SECRET")
    heartbeat_alert_sms: str | None = Field(
        default=None, description="Comma-separated E.164 numbers that get heartbeat alerts by SMS (Twilio)")
    log_checkpoint_key: str | None = Field(
        default=None, description="HMAC key that signs the log's checkpoints; keep it outside the database (or use "
        "log_checkpoint_key_file). Unset: no checkpoints are written")
    log_checkpoint_key_file: Path | None = Field(default=None, description="File holding the checkpoint key")
    log_checkpoint_file: Path | None = Field(
        default=None, description="Append-only file of signed checkpoints; default <data_dir>/log-checkpoints.jsonl")
    log_checkpoint_interval_s: float = Field(default=60.0, gt=0, description="How often the worker signs the head")
    log_witness_url: str | None = Field(
        default=None, description="Also POST each checkpoint here (a witness outside this machine)")
    timezone: str = Field(default="Asia/Shanghai",
                          description="The district's time zone: the console shows every time in it")
    # The daily situation report (态势研判, issue 17; pingan/sitrep_daily.py, run by the worker).
    sitrep_daily_at: str | None = Field(
        default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time (HH:MM, in `timezone`) the worker makes yesterday's report; unset: no daily report")
    sitrep_daily_to: str = Field(
        default="", description="Comma-separated e-mail addresses (SMTP settings) and/or https URLs (signed like "
        "the webhook channel) the daily report goes to; empty: stored and listed only")
    sitrep_daily_lang: Literal["zh", "en"] = Field(default="zh", description="The daily report's language")
    # People and sign-in (issue 13): web/auth.py, store/identity.py, store/sessions.py.
    session_idle_timeout_s: int = Field(
        default=1800, ge=60, description="A console session unused this long ends (idle timeout); sign in again")
    session_max_age_s: int = Field(default=43200, ge=300, description="A session ends this long after sign-in")
    second_factor_window_s: int = Field(
        default=900, ge=30, description="How long a passed second factor lets a session close and regrade")
    one_time_code_ttl_s: int = Field(default=300, ge=30, le=3600, description="An SMS sign-in code is good this long")
    sign_in_max_failures: int = Field(
        default=5, ge=1, le=100, description="Wrong passwords or codes in a row before the account is locked")
    sign_in_lock_s: int = Field(default=900, ge=1, description="How long a locked account stays locked")
    sign_in_rate_per_minute: int = Field(
        default=30, ge=1, description="Sign-in and code attempts per client address a minute; more gets 429")
    metrics_token: str | None = Field(
        default=None, description="Bearer token Prometheus scrapes the API's /metrics with; unset: generated into "
        "<data dir>/intake-tokens.json as `metrics`")
    public_docs: bool = Field(
        default=False, description="true: /docs, /redoc and /openapi.json answer anyone; false: signed-in people only")
    # Public information releases as CAP 1.2 (issue 17): schemas/adapters/cap_out.py, web/public.py.
    cap_sender: str = Field(
        default="pingan@emergency.invalid", pattern=r"^[^\s,<&]+$",
        description="CAP <sender> of every published release: stable, never changed once alerts are out (references "
        "name it); no spaces, commas, < or &")
    cap_sender_name: str = Field(default="平安应急指挥中心|Pingan Emergency Office", min_length=1,
                                 description="CAP <senderName>, `zh|en`")
    cap_expires_h: float = Field(default=24.0, gt=0, le=24 * 30,
                                 description="A published alert or update expires this long after publication")
    # Signed CAP (CAP 1.2 §3.3.2.1; schemas/adapters/cap_sign.py): both set, or neither (unsigned, as before).
    cap_signing_key: Path | None = Field(
        default=None, description="PEM private key (RSA >= 2048 bits or EC, unencrypted) that signs every published "
        "CAP document; unset: CAP documents are served unsigned")
    cap_signing_cert: Path | None = Field(
        default=None, description="PEM certificate of that key, then its intermediate CA certificates; embedded in "
        "each signature so that receivers can chain it to the CA they trust")
    # The signed release webhook (issue 17): every published release goes to each of these, signed with its own
    # secret as the webhook channel signs (handlers/channels/webhook.py), at least once with one Idempotency-Key.
    release_webhooks: str | None = Field(
        default=None, description="JSON list of {\"url\": \"https://…\", \"secret\": \"…\"}: media and other "
        "systems each published release is POSTed to (signed X-Pingan-Signature with that secret); unset: none")
    log_level: str = "INFO"

    @field_validator("release_webhooks")
    @classmethod
    def _release_webhooks_valid(cls, value: str | None) -> str | None:
        if value:
            release_webhook_targets(value)
        return value

    @model_validator(mode="after")
    def _cap_signing_usable(self) -> "Settings":
        # Read and checked here, when the settings are read, so a bad key stops start-up (never a 500 later).
        if (self.cap_signing_key is None) != (self.cap_signing_cert is None):
            missing = "cap_signing_cert" if self.cap_signing_cert is None else "cap_signing_key"
            raise _setting_error(missing, f"PINGAN_{missing.upper()} is not set: CAP signing needs both "
                                 "PINGAN_CAP_SIGNING_KEY and PINGAN_CAP_SIGNING_CERT (or neither, for unsigned CAP)")
        if self.cap_signing_key is not None and self.cap_signing_cert is not None:
            # signxml takes 0.2 s to import: only when signing is configured.
            from pingan.schemas.adapters.cap_sign import KEY_SETTING, CapSigningError, load_cap_signer

            try:
                self.__dict__["cap_signer"] = load_cap_signer(self.cap_signing_key, self.cap_signing_cert)
            except CapSigningError as exc:
                field = "cap_signing_key" if exc.setting == KEY_SETTING else "cap_signing_cert"
                raise _setting_error(field, str(exc), getattr(self, field)) from None
        return self

    @cached_property
    def cap_signer(self) -> "CapSigner | None":
        """The signer of published CAP documents (loaded when the settings were read), or None: unsigned."""
        return None

    @property
    def release_webhook_targets(self) -> dict[str, str]:
        """url -> secret of PINGAN_RELEASE_WEBHOOKS (checked when the settings are read)."""
        return release_webhook_targets(self.release_webhooks) if self.release_webhooks else {}

    @property
    def live_participants(self) -> frozenset[str] | None:
        if not self.drill_live_participants:
            return None
        return frozenset(p.strip() for p in self.drill_live_participants.split(",") if p.strip())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("PINGAN_CONFIG")
        if config_file:
            # The TOML file ranks below the environment, so one variable can override a shared file.
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the libpq-style scheme people paste, and use psycopg 3.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'pingan.db').resolve()}"

    def notify_limit(self, channel: str) -> int:
        """Concurrent sends allowed on `channel` (notify_concurrency over NOTIFY_CONCURRENCY)."""
        return max(1, int(self.notify_concurrency.get(channel, NOTIFY_CONCURRENCY.get(channel, 8))))

    @property
    def heartbeat_threshold_s(self) -> float:
        return self.heartbeat_interval_s * self.heartbeat_missed_intervals

    @property
    def log_checkpoint_path(self) -> Path:
        return self.log_checkpoint_file or self.data_dir / "log-checkpoints.jsonl"

    @property
    def console_sink_path(self) -> Path:
        return self.console_sink or self.data_dir / "console.log"

    @property
    def broker_address_path(self) -> Path:
        return self.data_dir / BROKER_ADDRESS_FILE

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def _setting_error(field: str, message: str, value: object = None) -> ValidationError:
    """A settings error named by the field at fault (a model validator's would be "value") and without pydantic's
    "Value error, " prefix: what `pingan` prints when it refuses to start."""
    return ValidationError.from_exception_data("Settings", [InitErrorDetails(
        type=PydanticCustomError("setting", message), loc=(field,), input=None if value is None else str(value))])


def release_webhook_targets(value: str) -> dict[str, str]:
    """url -> secret from PINGAN_RELEASE_WEBHOOKS; ValueError naming the entry that is wrong."""
    try:
        entries = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"release_webhooks: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(entries, list):
        raise ValueError("release_webhooks: a JSON list of {\"url\", \"secret\"} objects")
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        url = entry.get("url") if isinstance(entry, dict) else None
        secret = entry.get("secret") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url) or len(url) > 200:
            raise ValueError(f"release_webhooks[{i}].url: an http(s) URL of at most 200 characters is required")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError(f"release_webhooks[{i}].secret: at least 16 characters are required")
        out[url] = secret
    return out
