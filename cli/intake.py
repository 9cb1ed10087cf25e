"""`pingan intake test FILE [--token NAME]`: a file through the same parser and mapping as the live endpoint,
offline; with --token, also through that intake token's route checks (web/intake_tokens.py): the route it opens
(another route's token is the route's 401), the <sender> or externalURL it may use (403, naming the field), and for
a named Alertmanager token its key namespace. What needs the store (a CAP follow-up naming another sender's
message, 409) is left to the live route."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pingan.cli import runtime
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.input_kind import InputKind

if TYPE_CHECKING:
    from pingan.schemas.events import IntakeItem
    from pingan.web.intake_tokens import IntakeToken

intake_app = typer.Typer(help="Intake adapters (CAP, Alertmanager, Twilio, JSON), offline.", no_args_is_help=True)

# An intake token's source: the kind of file its route takes, and the route (web/intake.py).
ROUTES = {"cap": (InputKind.cap, "POST /v1/intake/cap"),
          "alertmanager": (InputKind.alertmanager, "POST /v1/intake/alertmanager"),
          "api": (InputKind.incident, "POST /v1/incidents")}


class Refused(Exception):
    """What the HTTP route would answer instead of 202: its status and the error body's text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@intake_app.command("test")
def intake_test(
    file: Annotated[Path, typer.Argument(help="A CAP XML, Alertmanager JSON, incident JSON or Twilio form file")],
    kind: Annotated[InputKind, typer.Option(help="What the file is; auto detects it")] = InputKind.auto,
    token: Annotated[str | None, typer.Option(
        help="An intake token's name (cap:cma, alertmanager:prod, api): check the file as that token's route "
             "would, with its bindings (PINGAN_INTAKE_TOKENS, or the data dir's intake-tokens.json)")] = None,
) -> None:
    """Print the incident(s) FILE would produce and the plan each would match, or the exact error."""
    from pingan.handlers.incidents.intake_preview import preview
    from pingan.schemas.adapters.config import load_intake_config
    from pingan.schemas.adapters.input_kind import detect

    try:
        data = file.read_bytes()
    except OSError as exc:
        runtime.fail(f"{file}: {exc.strerror}")
    settings = runtime.settings()
    chosen = detect(data) if kind is InputKind.auto else kind
    entry = _token(token, settings.intake_tokens, settings.data_dir) if token is not None else None
    try:
        if entry is not None:
            _check_route(entry, chosen)
        result = preview(data, chosen, str(file), load_intake_config(settings.intake_config), settings.plans_dir,
                         admit=(lambda items: _admit(entry, items)) if entry is not None else None,
                         district_file=settings.district_areas)
    except IntakeError as exc:
        if exc.source is None:
            exc.source = str(file)
        runtime.fail(str(exc))
    except Refused as exc:
        runtime.fail(f"{file}: {exc.status} refused: {exc}")
    how = f" (as intake token {entry.key!r} would bring it)" if entry is not None else ""
    runtime.echo(f"{file}: {result.kind.value}, {len(result.summaries)} incident event(s){how}")
    for summary in result.summaries:
        runtime.echo_lines(json.dumps(summary, ensure_ascii=False, indent=2))


def _token(name: str, configured: str | None, data_dir: Path) -> "IntakeToken":
    """The intake token `name` as the API would load it, read only; exit 2 naming the known ones otherwise."""
    from pingan.web.intake_tokens import TOKEN_FILE, read_tokens

    try:
        known = read_tokens(configured, data_dir)
    except (OSError, ValueError) as exc:
        runtime.fail(f"intake tokens: {exc}", code=2)
    entry = known.entries.get(name)
    if entry is None or entry.source not in ROUTES:
        names = ", ".join(sorted(k for k, e in known.entries.items() if e.source in ROUTES)) or "none"
        runtime.fail(f"no intake token {name!r} (PINGAN_INTAKE_TOKENS, or {data_dir / TOKEN_FILE}); known: {names}",
                     code=2)
    return entry


def _check_route(entry: "IntakeToken", kind: InputKind) -> None:
    want, route = ROUTES[entry.source]
    if kind is not want:  # check_bearer: a token for another source does not open this route
        other = next((r for k, r in ROUTES.values() if k is kind), "no intake token's route (Twilio's are signed)")
        raise Refused(401, f"intake token {entry.key!r} opens {route}; a {kind.value} file goes to {other}")


def _admit(entry: "IntakeToken", items: list["IntakeItem"]) -> list["IntakeItem"]:
    """What the token's route does between parsing and committing (web/intake.py)."""
    from pingan.schemas.adapters.alertmanager import bind_source
    from pingan.schemas.taxonomy import Source
    from pingan.web.intake_tokens import binding_refusal

    if (refusal := binding_refusal(entry, items)) is not None:
        raise Refused(403, str(refusal["error"]))
    if entry.source == "alertmanager":
        return bind_source(items, entry.name)  # its namespace: a resolve closes only what this binding opened
    if entry.source == "api":  # only the adapters may claim other sources
        return [i if i.report.source.value in ("api", "cli", "drill") else
                i.model_copy(update={"report": i.report.model_copy(update={"source": Source.api})}) for i in items]
    return items
