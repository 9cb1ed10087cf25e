"""Any intake message by its kind (CAP, Alertmanager, incident JSON, Twilio SMS or voice form), or with its kind
detected from its first bytes, through the same adapter as its live endpoint: `pingan intake test` reads files so."""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import ValidationError

from pingan.schemas.adapters.config import IntakeConfig
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.input_kind import InputKind
from pingan.schemas.events import IntakeItem


def parse(data: bytes, kind: InputKind, name: str, config: IntakeConfig) -> list[IntakeItem]:
    """The intake items `data` makes as `kind`; raises IntakeError with the field, line and column."""
    from pingan.schemas.adapters.alertmanager import parse_alertmanager
    from pingan.schemas.adapters.cap import parse_cap
    from pingan.schemas.adapters.twilio_forms import sms_to_item, voice_choice, voice_recording
    from pingan.schemas.incident import IncidentReport

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
