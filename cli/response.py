"""Duty officers' verbs: ack, escalate, close, handover, oncall."""

import getpass
from datetime import datetime
from typing import Annotated

import typer

from pingan.cli import runtime


def _by(by: str | None) -> str:
    return by or f"cli:{getpass.getuser()}"


def _run(incident_id: str, command: str, by: str | None, **details: object) -> None:
    from pingan.commands import run_command
    from pingan.handlers.incidents.escalation import Command, CommandRefused
    from pingan.handlers.plans.load import load_plans

    store = runtime.store()
    try:
        plans = load_plans(runtime.settings().plans_dir)
        result = run_command(store, plans, incident_id, Command(command), _by(by), **details)
    except CommandRefused as exc:
        runtime.fail(str(exc))
    if result.note:
        runtime.echo(result.note)
    for action in result.actions:
        typer.echo(runtime.format_action(action))


def ack(incident_id: Annotated[str, typer.Argument(help="Incident id")],
        by: Annotated[str | None, typer.Option(help="Who acknowledges (person id); default cli:<user>")] = None,
        ) -> None:
    """Acknowledge: stops the escalation for this incident."""
    _run(incident_id, "acknowledge", by)


def escalate(incident_id: Annotated[str, typer.Argument(help="Incident id")],
             by: Annotated[str | None, typer.Option(help="Who escalates")] = None,
             reason: Annotated[str | None, typer.Option(help="Why")] = None) -> None:
    """Escalate now: the next step of the plan runs at once."""
    _run(incident_id, "escalate", by, reason=reason)


def close(incident_id: Annotated[str, typer.Argument(help="Incident id")],
          reason: Annotated[str, typer.Option(help="Why it is closed (required)")],
          by: Annotated[str | None, typer.Option(help="Who closes")] = None) -> None:
    """Close the incident: every pending escalation is cancelled."""
    _run(incident_id, "close", by, reason=reason)


def handover(incident_id: Annotated[str, typer.Argument(help="Incident id")],
             to: Annotated[str, typer.Option(help="Person id of the new holder")],
             role: Annotated[str, typer.Option(help="The command role handed over")] = "commander",
             reason: Annotated[str | None, typer.Option(help="Why")] = None,
             by: Annotated[str | None, typer.Option(help="Who hands over")] = None) -> None:
    """Hand a command role over; later escalations to that role go to the new holder."""
    _run(incident_id, "handover", by, to=to, role=role, reason=reason)


def task(incident_id: Annotated[str, typer.Argument(help="Incident id")],
         task_id: Annotated[str, typer.Argument(metavar="TASK", help="The plan task's id (see `pingan timeline`)")],
         by: Annotated[str | None, typer.Option(help="Who reports it done")] = None,
         note: Annotated[str | None, typer.Option(help="What was done")] = None) -> None:
    """Report a plan task done (任务完成); drills score it against the task's deadline."""
    _run(incident_id, "task_done", by, task=task_id, reason=note)


def oncall(roster: Annotated[str | None, typer.Argument(help="Roster id; all rosters when left out")] = None,
           at: Annotated[str | None, typer.Option(help="ISO time, e.g. 2026-11-25T18:00+08:00; default now")] = None
           ) -> None:
    """Who is on duty (值班) now, or at --at, per roster, overrides included."""
    from pingan.handlers.plans.directory import UnknownRoster, on_call
    from pingan.handlers.plans.load import load_plans
    from pingan.schemas.common import utcnow

    try:
        when = datetime.fromisoformat(at) if at else utcnow()
    except ValueError:
        runtime.fail(f"--at {at!r} is not an ISO time, e.g. 2026-11-25T18:00+08:00")
    if when.tzinfo is None:
        runtime.fail("--at needs a time zone offset, e.g. 2026-11-25T18:00+08:00")
    try:
        duty = on_call(load_plans(runtime.settings().plans_dir).directory, roster, when)
    except UnknownRoster as exc:
        runtime.fail(str(exc))
    for entry in duty:
        name = entry.person.name if entry.person else "?"
        runtime.echo(f"{entry.roster.id:<18} {entry.roster.name.zh:<16} {entry.person_id:<16} {name}")
