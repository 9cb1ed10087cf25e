"""The intake mappings in one YAML file (PINGAN_INTAKE_CONFIG); every table falls back to its documented default."""

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from pingan.schemas.adapters.alertmanager import AlertmanagerMapping
from pingan.schemas.adapters.areas import DEFAULT_AREAS, AreaTable, areas_from
from pingan.schemas.adapters.cap_mapping import CapMapping
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.sms_lexicon import DEFAULT_LEXICON, Lexicon
from pingan.schemas.common import Model


class IntakeConfig(Model):
    # The SMS lexicon (schemas/adapters/lexicon/sms.yaml); `extends_default: true` adds to the shipped one.
    sms_keywords: Lexicon = Field(default=DEFAULT_LEXICON)
    # Names to find in citizens' texts; when the file gives none, the district GeoJSON's (PINGAN_DISTRICT_AREAS).
    areas: AreaTable = Field(default=DEFAULT_AREAS)

    cap: CapMapping = Field(default_factory=CapMapping)
    alertmanager: AlertmanagerMapping = Field(default_factory=AlertmanagerMapping)

    @field_validator("sms_keywords")
    @classmethod
    def _extend(cls, lexicon: Lexicon) -> Lexicon:
        return lexicon.over(DEFAULT_LEXICON) if lexicon.extends_default else lexicon


def load_intake_config(path: Path | None, areas_file: Path | None = None) -> IntakeConfig:
    """The intake config of `path` (None: the defaults); areas it does not list come from `areas_file`, the
    district GeoJSON (None: the shipped one)."""
    if path is None:
        return IntakeConfig(areas=areas_from(areas_file))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise IntakeError(str(exc.problem), source=str(path), line=mark.line + 1 if mark else None,
                          col=mark.column + 1 if mark else None) from None
    if isinstance(data, dict) and "areas" not in data:
        data = {**data, "areas": areas_from(areas_file)}
    try:
        return IntakeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IntakeError(first["msg"], field=".".join(str(p) for p in first["loc"]), source=str(path)) from None
