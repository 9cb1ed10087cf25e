"""The intake mappings in one YAML file (PINGAN_INTAKE_CONFIG); every table falls back to its documented default."""

from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from pingan.schemas.adapters.alertmanager import AlertmanagerMapping
from pingan.schemas.adapters.cap_mapping import CapMapping
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.twilio_forms import DEFAULT_AREAS, DEFAULT_KEYWORDS, AreaTable, KeywordTable
from pingan.schemas.common import Model


class IntakeConfig(Model):
    sms_keywords: KeywordTable = Field(default=DEFAULT_KEYWORDS)
    areas: AreaTable = Field(default=DEFAULT_AREAS)
    cap: CapMapping = Field(default_factory=CapMapping)
    alertmanager: AlertmanagerMapping = Field(default_factory=AlertmanagerMapping)


def load_intake_config(path: Path | None) -> IntakeConfig:
    if path is None:
        return IntakeConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise IntakeError(str(exc.problem), source=str(path), line=mark.line + 1 if mark else None,
                          col=mark.column + 1 if mark else None) from None
    try:
        return IntakeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IntakeError(first["msg"], field=".".join(str(p) for p in first["loc"]), source=str(path)) from None
