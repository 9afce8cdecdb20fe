"""Sample records: a Kafka record written down as a small JSON file (see ``config/examples/README.md``).

The same files feed the golden tests, ``rueckkanal render`` and the demo publisher, so that what is tested is what
is shown::

    {"key": "BWP-2024-004711", "headers": {"ce_id": "..."}, "value": {...} or "text", "encoding": "utf-8"}

A JSON object ``value`` becomes compact UTF-8 JSON; a string ``value`` is encoded with ``encoding`` (default
UTF-8), so a legacy ISO-8859-1 XML payload arrives with the bytes its Fachverfahren would send.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.inbound.base import InboundRecord
from rueckkanal.errors import ConfigError


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = None
    headers: dict[str, str] = {}
    value: dict[str, Any] | str | None = None
    encoding: str = "utf-8"

    def value_bytes(self) -> bytes | None:
        if self.value is None:
            return None
        if isinstance(self.value, str):
            return self.value.encode(self.encoding)
        return json.dumps(self.value, ensure_ascii=False, separators=(",", ":")).encode()

    def record(self, topic: str, *, partition: int = 0, offset: int = 0) -> InboundRecord:
        return InboundRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=0,
            key=None if self.key is None else self.key.encode(),
            value=self.value_bytes(),
            headers=tuple((name, value.encode()) for name, value in self.headers.items()),
        )


def read_sample(path: Path) -> Sample:
    """One sample file; a file that is not one raises :class:`ConfigError`."""
    try:
        return Sample.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(file)"
        raise ConfigError(f"{path}: not a sample record: {where}: {first['msg']}") from None
