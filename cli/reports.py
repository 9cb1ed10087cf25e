"""An incident's reports (警情), and the duty officer's corrections: merge two incidents, split a report out."""

from typing import Annotated

import typer

from pingan.cli import runtime
from pingan.cli.response import _by


def reports(incident_id: Annotated[str, typer.Argument(help="Incident id")]) -> None:
    """List an incident's reports (警情): every source's, merged incidents' included."""
    from pingan.store.merges import reports_of

    store = runtime.store()
    resolved = store.resolve_incident_id(incident_id)
    incident = store.get_incident(resolved) if resolved else None
    if incident is None:
        runtime.fail(f"incident {incident_id} not found")
    for row in reports_of(store, incident):
        report = row.event.report
        where = report.location.area_name or report.location.area_code or "-"
        facts = " ".join(f"{k}={v}" for k, v in sorted(report.labels.items())
                         if k in ("casualties", "deaths", "injured", "trapped", "missing"))
        # A citizen's text: runtime.echo escapes its control characters, so a newline cannot forge a line.
        runtime.echo(f"{row.event_id}  {row.at.isoformat(timespec='seconds')}  {row.outcome:<10} "
                     f"{report.source.value:<13} {report.grade.value:<3} {where}  {report.title}"
                     + (f"  {facts}" if facts else ""))


def merge(incident_id: Annotated[str, typer.Argument(help="The incident that stays")],
          other: Annotated[str, typer.Argument(help="The incident merged into it (closed)")],
          by: Annotated[str | None, typer.Option(help="Who merges (person id); default cli:<user>")] = None,
          reason: Annotated[str | None, typer.Option(help="Why (logged)")] = None) -> None:
    """Merge another incident of the same event into this one: its reports and facts join, it is closed."""
    from pingan.commands import merge_incidents
    from pingan.handlers.incidents.escalation import CommandRefused

    try:
        result = merge_incidents(runtime.store(), incident_id, other, _by(by), reason)
    except CommandRefused as exc:
        runtime.fail(str(exc))
    for action in result.actions:
        typer.echo(runtime.format_action(action))


def split(incident_id: Annotated[str, typer.Argument(help="Incident id")],
          event_id: Annotated[str, typer.Argument(help="The report to split out (see `pingan reports ID`)")],
          by: Annotated[str | None, typer.Option(help="Who splits (person id); default cli:<user>")] = None,
          reason: Annotated[str | None, typer.Option(help="Why (logged)")] = None) -> None:
    """Split a report out of an incident into an incident of its own (its own plan and notifications)."""
    from pingan.commands import split_report
    from pingan.handlers.incidents.escalation import CommandRefused
    from pingan.streams import topics

    settings = runtime.settings()
    try:
        result, new_id = split_report(runtime.store(), incident_id, event_id, _by(by), settings.topic(topics.RAW),
                                      reason)
    except CommandRefused as exc:
        runtime.fail(str(exc))
    for action in result.actions:
        typer.echo(runtime.format_action(action))
    runtime.echo(new_id)
