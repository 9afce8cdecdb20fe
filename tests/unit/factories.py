"""Builders shared by the unit tests: valid events, the shipped Fachverfahren, and the example records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.inbound.config import FachverfahrenConfig, build_adapter, load_fachverfahren
from adapters.inbound.samples import read_sample
from rueckkanal.model import StatusEvent
from rueckkanal.resources import data_path
from rueckkanal.settings import PROJECT_ROOT

FACHVERFAHREN_DIR = data_path("fachverfahren")
EXAMPLES_DIR = PROJECT_ROOT / "config" / "examples"
FIXTURES_DIR = PROJECT_ROOT / "tests" / "fixtures"
#: The erstellungszeitpunkt of every golden message.
FIXED_CREATED_AT = datetime(2024, 7, 1, 12, 0, 0, 123000, tzinfo=UTC)

SOURCE = "urn:de:leipzig:fachverfahren:hundesteuer"


def event_values(**overrides: Any) -> dict[str, Any]:
    """Canonical JSON values of a valid 100 event; ``overrides`` replace or add keys (None removes a key)."""
    values: dict[str, Any] = {
        "source": SOURCE,
        "eventId": "evt-1",
        "vorgangId": "HST-2024-000123",
        "leistung": "99108001000000",
        "status": "100",
        "statusZeit": "2024-03-04T08:12:31+01:00",
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def event(**overrides: Any) -> StatusEvent:
    import json

    return StatusEvent.from_json_bytes(json.dumps(event_values(**overrides)).encode())


def shipped_fachverfahren() -> dict[str, FachverfahrenConfig]:
    return {config.name: config for config in load_fachverfahren(FACHVERFAHREN_DIR)}


def example_events() -> Iterator[tuple[Path, StatusEvent]]:
    """Every example record, decoded by its Fachverfahren's adapter, in file order per Fachverfahren."""
    for name, config in sorted(shipped_fachverfahren().items()):
        adapter = build_adapter(config)
        for path in sorted((EXAMPLES_DIR / name).glob("*.json")):
            yield path, adapter.decode(read_sample(path).record(config.topic))
