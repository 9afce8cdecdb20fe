"""Outbox records for delivery tests, made by the same decode → lifecycle → render path as the ingest stage."""

from __future__ import annotations

from pathlib import Path

from adapters.inbound.base import InboundRecord
from adapters.inbound.config import build_adapter, load_fachverfahren
from rueckkanal.lifecycle import Advanced, VorgangState, advance
from rueckkanal.resources import data_path
from rueckkanal.settings import Settings
from rueckkanal.xoev import MessageRenderer
from streams.ingest import outbox_headers
from tests.support.events import ValidEvent
from tests.support.kafka_io import Record

ROOT = Path(__file__).resolve().parents[2]


def outbox_records(events: list[ValidEvent]) -> list[Record]:
    """The outbox records ingest would write for these Hundesteuer events, in the same order."""
    [hundesteuer] = [fv for fv in load_fachverfahren(data_path("fachverfahren")) if fv.name == "hundesteuer"]
    adapter = build_adapter(hundesteuer)
    renderer = MessageRenderer(Settings().xoev)
    states: dict[str, VorgangState] = {}
    records: list[Record] = []
    for e in events:
        key, value, headers = e.record
        event = adapter.decode(InboundRecord(hundesteuer.topic, 0, 0, 0, key, value, tuple(headers)))
        result = advance(states.get(event.vorgang_key), event)
        assert isinstance(result, Advanced), result
        states[event.vorgang_key] = result.state
        rendered = renderer.render(event, result.state)
        records.append(
            (event.vorgang_key.encode(), rendered.xml, outbox_headers(event, rendered, headers, "hundesteuer"))
        )
    return records
