"""`pingan intake test FILE`: a file through the same parser and mapping as the live endpoint, offline."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl

import typer
from pydantic import ValidationError

from pingan.cli import runtime
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.events import IntakeItem

intake_app = typer.Typer(help="Intake adapters (CAP, Alertmanager, Twilio, JSON), offline.", no_args_is_help=True)


class InputKind(StrEnum):
    auto = "auto"
    cap = "cap"
    alertmanager = "alertmanager"
    incident = "incident"
    twilio_sms = "twilio-sms"
    twilio_voice = "twilio-voice"


def detect(data: bytes) -> InputKind:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return InputKind.cap
    if head == b"{":
        try:
            parsed = json.loads(data)
        except ValueError:
            return InputKind.incident  # the incident parser reports the JSON error with its position
        return InputKind.alertmanager if isinstance(parsed, dict) and "alerts" in parsed else InputKind.incident
    if b"CallSid=" in data:
        return InputKind.twilio_voice
    return InputKind.twilio_sms


def parse(data: bytes, kind: InputKind, name: str) -> list[IntakeItem]:
    from pingan.schemas.adapters.alertmanager import parse_alertmanager
    from pingan.schemas.adapters.cap import parse_cap
    from pingan.schemas.adapters.config import load_intake_config
    from pingan.schemas.adapters.twilio_forms import sms_to_item, voice_choice, voice_recording
    from pingan.schemas.incident import IncidentReport

    config = load_intake_config(runtime.settings().intake_config)
    if kind is InputKind.cap:
        return parse_cap(data, config.cap, source_name=name)
    if kind is InputKind.alertmanager:
        return parse_alertmanager(data, config.alertmanager, source_name=name)
    if kind is InputKind.incident:
        try:
            return [IntakeItem(report=IncidentReport.model_validate_json(data))]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise IntakeError(first["msg"], field=".".join(str(p) for p in first["loc"]) or None, source=name) from None
    form = dict(parse_qsl(data.decode("utf-8").strip(), keep_blank_values=True))
    if kind is InputKind.twilio_voice:
        outcome = voice_recording(form) if "RecordingUrl" in form else voice_choice(form, "/record")
        return [outcome.item] if outcome.item else []
    sms = sms_to_item(form, config.sms_keywords, config.areas)
    return [sms.item] if sms.item else []


@intake_app.command("test")
def intake_test(
    file: Annotated[Path, typer.Argument(help="A CAP XML, Alertmanager JSON, incident JSON or Twilio form file")],
    kind: Annotated[InputKind, typer.Option(help="What the file is; auto detects it")] = InputKind.auto,
) -> None:
    """Print the incident(s) FILE would produce and the plan each would match, or the exact error."""
    from pingan.handlers.plans.load import load_plans
    from pingan.handlers.plans.matching import match_plan

    try:
        data = file.read_bytes()
    except OSError as exc:
        runtime.fail(f"{file}: {exc.strerror}")
    chosen = detect(data) if kind is InputKind.auto else kind
    try:
        items = parse(data, chosen, str(file))
    except IntakeError as exc:
        if exc.source is None:
            exc.source = str(file)
        runtime.fail(str(exc))
    plans = load_plans(runtime.settings().plans_dir)
    typer.echo(f"{file}: {chosen.value}, {len(items)} incident event(s)")
    for item in items:
        match = match_plan(plans, item.report)
        summary = {
            "kind": item.kind.value, "source_key": item.source_key, "dedup_key": item.report.effective_dedup_key(),
            "plan": match.plan.id if match.plan else None, "plan_reason": match.reason,
            "report": item.report.model_dump(mode="json", exclude_defaults=True),
        }
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
