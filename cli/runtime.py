"""What CLI commands share: settings, the store, the broker address, and output formatting.

Stored text (titles, names, reasons) is printed through `echo` / `format_action`, which escape control characters
(schemas/printable.py): a newline in a title must not forge a line of output, nor an ANSI escape repaint it."""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import TYPE_CHECKING, NoReturn

import typer

from pingan.schemas.printable import escape_log_records, printable  # light: re and logging only

if TYPE_CHECKING:  # imported where used: `pingan --help` must not pay for pydantic models or SQLAlchemy
    from pydantic import ValidationError

    from pingan.schemas.action import Action
    from pingan.settings import Settings
    from pingan.store.repository import Store


def describe_validation(exc: ValidationError) -> str:
    from pingan.schemas.common import describe_validation as describe

    return describe(exc)


@cache
def settings() -> Settings:
    from pydantic import ValidationError

    from pingan.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        fail("bad settings: " + describe_validation(exc))


@cache
def store() -> Store:
    from pingan.store.repository import Store

    s = settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(s.resolved_database_url)


def bootstrap_servers() -> str:
    """KAFKA_BOOTSTRAP_SERVERS, or the address `pingan up` wrote for its embedded broker."""
    s = settings()
    if s.kafka_bootstrap_servers:
        return s.kafka_bootstrap_servers
    path = s.broker_address_path
    if path.exists():
        return path.read_text().strip()
    fail("no broker: set KAFKA_BOOTSTRAP_SERVERS or start `pingan up`")


def configure_logging() -> None:
    """The process bootstrap's logging (up, worker, api): every record's message printable, so one line each."""
    escape_log_records()
    level = os.environ.get("PINGAN_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python logs every connection at INFO; that drowns what the duty room needs to read.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def echo(text: str, err: bool = False) -> None:
    """One line that may hold stored text, its control characters escaped."""
    typer.echo(printable(text), err=err)


def echo_lines(text: str, err: bool = False) -> None:
    """Several lines of our own making (e.g. indented JSON, a list of problems), each line's text escaped."""
    for line in text.split("\n"):
        echo(line, err=err)


def fail(message: str, code: int = 1) -> NoReturn:
    # A refusal often quotes what was typed or stored (an id, a person, a plan's problems): each line escaped,
    # the lines kept.
    echo_lines(f"error: {message}", err=True)
    raise typer.Exit(code)


def format_action(a: Action) -> str:
    plan = f" plan={a.plan_id}@v{a.plan_version}" if a.plan_id else ""
    bits = [f"{k}={v}" for k, v in a.details.items() if k in ("channel", "recipient", "reason", "event_id",
                                                              "report_count", "provider_id", "level", "task",
                                                              "release", "revision", "cap_identifier")]
    return printable(f"  #{a.seq:<6} {a.at.isoformat(timespec='milliseconds')} {a.kind.value:<15} {a.actor}{plan} "
                     + " ".join(bits))
