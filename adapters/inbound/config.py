"""The Fachverfahren registry: one YAML file per Fachverfahren in one directory (``RK_FACHVERFAHREN_DIR``; default:
the mappings shipped in ``rueckkanal/data/fachverfahren/``), and the adapter for each.

A file names the Fachverfahren (``name``, the metric label ``source``), its Kafka ``topic``, its CloudEvents
``source`` URI, its ``format`` and the format's ``mapping``::

    name: bewohnerparken
    topic: fv.bewohnerparken.status
    source: urn:de:leipzig:fachverfahren:bewohnerparken
    format: mapped_json
    mapping:
      fields: {vorgangId: antrag.nummer, status: bearbeitung.code, statusZeit: bearbeitung.zeit}
      leistung: "99108009000000"

:func:`load_fachverfahren` reads every file and reports every problem of every file at once, so an operator fixes
the directory in one go instead of one error per restart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.inbound.base import DEFAULT_MAX_PAYLOAD_BYTES, InboundAdapter
from adapters.inbound.cloudevents import CloudEventsAdapter, CloudEventsMapping
from adapters.inbound.mapped_json import JsonMapping, MappedJsonAdapter
from adapters.inbound.mapped_xml import MappedXmlAdapter, XmlMapping
from rueckkanal.errors import ConfigError
from rueckkanal.model import LEISTUNG_PATTERN, URI_PATTERN

Format = Literal["cloudevents", "mapped_json", "mapped_xml"]
Mapping = Annotated[CloudEventsMapping | JsonMapping | XmlMapping, Field(discriminator="format")]
_TOPIC = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")  # Kafka's legal topic names


class LeistungName(BaseModel):
    """What a citizen calls a Leistung: the name on the status page, in the BundID mailbox and the status monitor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    de: str = Field(min_length=1, max_length=100, description="the name in German, as the portal shows it")
    en: str | None = Field(None, min_length=1, max_length=100, description="the name in English")


class FachverfahrenConfig(BaseModel):
    """One Fachverfahren: where its events arrive and how to read them, and the names of its Leistungen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", description="short name; the metric label 'source'")
    description: str | None = None
    topic: str = Field(pattern=_TOPIC.pattern, description="the Fachverfahren's Kafka topic")
    source: str = Field(max_length=255, pattern=URI_PATTERN, description="CloudEvents source URI of its events")
    format: Format
    mapping: Mapping
    max_payload_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, ge=1024, le=16 * 1024 * 1024)
    leistungen: dict[Annotated[str, Field(pattern=LEISTUNG_PATTERN)], LeistungName] = Field(
        default_factory=dict, description="Leistungsschlüssel (LeiKa/FIM) → the Leistung's name for citizens"
    )

    def leistung_name(self, leistung: str) -> LeistungName | None:
        """The configured name of a Leistung of this Fachverfahren, or None."""
        return self.leistungen.get(leistung)

    @model_validator(mode="before")
    @classmethod
    def _mapping_takes_format(cls, data: Any) -> Any:
        """The YAML says the format once, at the top; the mapping's own ``format`` field is its union tag."""
        if isinstance(data, dict) and isinstance(data.get("format"), str):
            mapping = data.get("mapping") or {}
            if isinstance(mapping, dict):
                return {**data, "mapping": {**mapping, "format": data["format"]}}
        return data


class FachverfahrenConfigError(ConfigError):
    """Every problem found in the configuration directory, one line each in ``problems``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid Fachverfahren configuration:\n  " + "\n  ".join(problems))
        self.problems = tuple(problems)


def load_fachverfahren(directory: Path) -> list[FachverfahrenConfig]:
    """Every ``*.yaml`` in ``directory``, validated; raises :class:`FachverfahrenConfigError` listing all problems."""
    problems: list[str] = []
    configs: list[FachverfahrenConfig] = []
    if not directory.is_dir():
        raise FachverfahrenConfigError([f"{directory}: not a directory"])
    for path in sorted(directory.glob("*.yaml")):
        config = _read(path, problems)
        if config is not None:
            if config.name != path.stem:
                problems.append(f"{path.name}: name {config.name!r} must equal the file name {path.stem!r}")
            configs.append(config)
    for attribute in ("name", "topic", "source"):
        seen: dict[str, str] = {}
        for config in configs:
            value = getattr(config, attribute)
            if value in seen:
                problems.append(f"{config.name}: {attribute} {value!r} is also used by {seen[value]}")
            seen[value] = config.name
    if problems:
        raise FachverfahrenConfigError(problems)
    return configs


def _read(path: Path, problems: list[str]) -> FachverfahrenConfig | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot read: {exc}")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problems.append(f"{path.name}: not valid YAML{where}")
        return None
    try:
        return FachverfahrenConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(file)"
            problems.append(f"{path.name}: {where}: {error['msg']}")
        return None


def build_adapter(config: FachverfahrenConfig) -> InboundAdapter:
    """The adapter for one Fachverfahren."""
    mapping, source, limit = config.mapping, config.source, config.max_payload_bytes
    if isinstance(mapping, CloudEventsMapping):
        return CloudEventsAdapter(mapping, source=source, max_payload_bytes=limit)
    if isinstance(mapping, JsonMapping):
        return MappedJsonAdapter(mapping, source=source, max_payload_bytes=limit)
    return MappedXmlAdapter(mapping, source=source, max_payload_bytes=limit)
