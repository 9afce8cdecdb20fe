"""Several delivery targets: settings, consumer groups, a dead letter that names its target, and a replay that
reaches only that target again (dispatcher and ``dlq replay`` through their pure parts, no broker)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.portal.memory import InMemoryPortal
from rueckkanal.errors import PermanentDeliveryError, Reason
from rueckkanal.settings import DEFAULT_TARGET, Settings
from streams.dlq_tool import DeadLetter, Filters, failed_target, replay_headers
from streams.headers import H_REPLAY_TARGET, H_STAGE, H_TARGET, header
from streams.recordlog import LogRecord
from streams.worker import delivery_group
from tests.unit.delivery.test_dispatcher import CONFIG, TP, FakeProducer, all_finished, record
from tests.unit.delivery.test_dispatcher import dispatcher as make_dispatcher

ZBP_TARGET = {"adapter": "zbp", "signing_key": "/run/zbp/key.pem", "signing_cert": "/run/zbp/cert.pem"}


def test_the_portal_section_is_the_default_target_and_keeps_its_consumer_group() -> None:
    settings = Settings(targets={"zbp": ZBP_TARGET, "amt24-test": {"adapter": "xoev_http"}})
    assert settings.target_names() == [DEFAULT_TARGET, "amt24-test", "zbp"]
    assert delivery_group("rk", DEFAULT_TARGET) == "rk.delivery"  # an upgrade redelivers nothing
    assert delivery_group("rk", "zbp") == "rk.delivery.zbp"


def test_a_target_may_not_take_the_default_name_or_an_unknown_adapter() -> None:
    with pytest.raises(ValidationError):
        Settings(targets={DEFAULT_TARGET: ZBP_TARGET})
    with pytest.raises(ValidationError):
        Settings(targets={"x": {"adapter": "fax"}})


def test_a_zbp_target_needs_https_off_loopback() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(targets={"zbp": {**ZBP_TARGET, "status_url": "http://zbp.example/status"}})


def dispatcher_for(target: str, portal: InMemoryPortal) -> tuple[Any, FakeProducer]:
    d, producer, _metrics = make_dispatcher(portal)
    d.config = type(CONFIG)(**{**d.config.__dict__, "target": target})
    d._target = target
    d.scheduler.target = target
    return d, producer


def with_headers(offset: int, *extra: tuple[str, bytes]) -> LogRecord:
    rec = record(offset)
    return dataclasses.replace(rec, headers=(*rec.headers, *extra))


async def test_a_delivery_dead_letter_names_its_target() -> None:
    portal = InMemoryPortal(lambda message: PermanentDeliveryError("no", portal_code="X002"))
    d, producer = dispatcher_for("zbp", portal)
    d._accept(TP, record(0))
    await all_finished(d)
    [dead] = [headers for (topic, _, _), headers in zip(producer.sent, producer.headers, strict=True) if topic == "dlq"]
    assert header(dead, H_TARGET) == "zbp"
    assert header(dead, "rk.error.reason") == Reason.PORTAL_REJECTED.value


async def test_a_replay_for_another_target_is_skipped_and_its_offset_finished() -> None:
    portal = InMemoryPortal()
    d, _producer = dispatcher_for(DEFAULT_TARGET, portal)
    partition = d.scheduler.partitions[TP]
    d._accept(TP, with_headers(0, (H_REPLAY_TARGET, b"zbp")))
    d._accept(TP, with_headers(1, (H_REPLAY_TARGET, DEFAULT_TARGET.encode())))
    d._accept(TP, record(2))  # an ordinary outbox record: every target delivers it
    await all_finished(d)
    assert [m.nachrichten_uuid for m in portal.received] == ["uuid-1", "uuid-2"]
    assert partition.offsets.committable() == 3  # the skipped record does not hold back the commit


def letter(*headers: tuple[str, bytes]) -> DeadLetter:
    return DeadLetter(partition=0, offset=7, key=b"k", value=b"<xml/>", headers=list(headers))


def test_dlq_replay_of_a_delivery_dead_letter_names_only_its_target() -> None:
    from datetime import UTC, datetime

    zbp = letter((H_STAGE, b"delivery"), (H_TARGET, b"zbp"), (H_REPLAY_TARGET, b"default"))
    headers = replay_headers(zbp, datetime.now(UTC))
    assert [v for k, v in headers if k == H_REPLAY_TARGET] == [b"zbp"]  # the old replay's target is replaced
    assert header(headers, H_TARGET) is None  # rk.error.* do not travel back to the outbox


def test_a_dead_letter_from_before_targets_replays_to_the_default_target_only() -> None:
    old = letter((H_STAGE, b"delivery"))
    assert failed_target(old) == DEFAULT_TARGET
    ingest = letter((H_STAGE, b"ingest"))
    assert failed_target(ingest) is None
    from datetime import UTC, datetime

    assert header(replay_headers(ingest, datetime.now(UTC)), H_REPLAY_TARGET) is None


def test_dlq_filters_by_target() -> None:
    zbp = letter((H_STAGE, b"delivery"), (H_TARGET, b"zbp"))
    default = letter((H_STAGE, b"delivery"))
    assert Filters(target="zbp").match(zbp)
    assert not Filters(target="zbp").match(default)
    assert Filters(target=DEFAULT_TARGET).match(default)
