"""Outbox records for delivery tests, made by the same decode → lifecycle → render path as the ingest stage."""

from __future__ import annotations

import uuid
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


def antrags_id_of(vorgang_key: str) -> str:
    """The antragsID a test gives a Vorgang (the ZBP's applicationId): fixed per Vorgang key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, vorgang_key))


def outbox_records(events: list[ValidEvent], *, with_antrags_id: bool = False) -> list[Record]:
    """The outbox records ingest would write for these Hundesteuer events, in the same order; with
    ``with_antrags_id`` each event carries :func:`antrags_id_of` its Vorgang, as a ZBP target needs."""
    [hundesteuer] = [fv for fv in load_fachverfahren(data_path("fachverfahren")) if fv.name == "hundesteuer"]
    adapter = build_adapter(hundesteuer)
    renderer = MessageRenderer(Settings().xoev)
    states: dict[str, VorgangState] = {}
    records: list[Record] = []
    for e in events:
        key, value, headers = e.record
        event = adapter.decode(InboundRecord(hundesteuer.topic, 0, 0, 0, key, value, tuple(headers)))
        if with_antrags_id:
            event = event.model_copy(update={"antrags_id": antrags_id_of(event.vorgang_key)})
        result = advance(states.get(event.vorgang_key), event)
        assert isinstance(result, Advanced), result
        states[event.vorgang_key] = result.state
        rendered = renderer.render(event, result.state)
        records.append(
            (event.vorgang_key.encode(), rendered.xml, outbox_headers(event, rendered, headers, "hundesteuer"))
        )
    return records
