"""`pingan intake test FILE`: a file through the same parser and mapping as the live endpoint, offline."""

import json
from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.input_kind import InputKind

intake_app = typer.Typer(help="Intake adapters (CAP, Alertmanager, Twilio, JSON), offline.", no_args_is_help=True)


@intake_app.command("test")
def intake_test(
    file: Annotated[Path, typer.Argument(help="A CAP XML, Alertmanager JSON, incident JSON or Twilio form file")],
    kind: Annotated[InputKind, typer.Option(help="What the file is; auto detects it")] = InputKind.auto,
) -> None:
    """Print the incident(s) FILE would produce and the plan each would match, or the exact error."""
    from pingan.handlers.incidents.intake_preview import preview
    from pingan.schemas.adapters.config import load_intake_config

    try:
        data = file.read_bytes()
    except OSError as exc:
        runtime.fail(f"{file}: {exc.strerror}")
    settings = runtime.settings()
    try:
        result = preview(data, kind, str(file), load_intake_config(settings.intake_config), settings.plans_dir)
    except IntakeError as exc:
        if exc.source is None:
            exc.source = str(file)
        runtime.fail(str(exc))
    runtime.echo(f"{file}: {result.kind.value}, {len(result.summaries)} incident event(s)")
    for summary in result.summaries:
        runtime.echo_lines(json.dumps(summary, ensure_ascii=False, indent=2))
