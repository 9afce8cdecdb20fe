"""The canonical outcome line, the Vorgang hash, redaction, the console format, and the readiness conditions."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog

from rueckkanal.settings import LogFormat, LogSettings
from streams import logs
from streams.obs import Readiness


@contextmanager
def _configured(settings: LogSettings) -> Iterator[io.StringIO]:
    """The worker's real logging configuration, writing to a buffer; the previous configuration restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    config = logs.logging_config(settings)
    config["handlers"]["default"]["stream"] = stream
    logging.config.dictConfig(config)
    structlog.reset_defaults()
    logs.configure_structlog()
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
        logs.configure_vorgang_hash(None)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    with _configured(LogSettings()) as stream:
        yield stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_outcome_line_has_the_canonical_fields_and_hides_the_vorgang(captured: io.StringIO) -> None:
    logs.configure_vorgang_hash("schluessel-fuer-alle-replicas")
    logs.log_outcome(
        topic="fv.hundesteuer.status",
        partition=3,
        offset=1187,
        source="hundesteuer",
        outcome="dead_lettered",
        reason="schema_invalid",
        duration_ms=1.23456,
        vorgang_key="hundesteuer/HS-2026-004711",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        stage="ingest",
    )
    (line,) = _lines(captured)
    assert line["event"] == "message outcome"
    assert line["level"] == "warning"  # a dead letter is worth a warning
    assert {k: line[k] for k in ("topic", "partition", "offset", "source", "outcome", "reason", "stage")} == {
        "topic": "fv.hundesteuer.status",
        "partition": 3,
        "offset": 1187,
        "source": "hundesteuer",
        "outcome": "dead_lettered",
        "reason": "schema_invalid",
        "stage": "ingest",
    }
    assert line["duration_ms"] == 1.235
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len(str(line["vorgang"])) == 16
    assert "004711" not in captured.getvalue()
    assert line["vorgang"] == logs.vorgang_ref("hundesteuer/HS-2026-004711")


def test_vorgang_ref_is_keyed() -> None:
    logs.configure_vorgang_hash("key-a")
    a = logs.vorgang_ref("hundesteuer/4711")
    assert logs.vorgang_ref("hundesteuer/4711") == a  # stable: one Vorgang can be followed through the logs
    assert logs.vorgang_ref("bewohnerparken/4711") != a
    logs.configure_vorgang_hash("key-b")
    assert logs.vorgang_ref("hundesteuer/4711") != a  # without the key, a guessed id cannot be confirmed
    logs.configure_vorgang_hash(None)


def test_success_is_info_and_absent_fields_are_absent(captured: io.StringIO) -> None:
    logs.log_outcome(
        topic="rueckkanal.outbox", partition=0, offset=5, source="gewerberegister", outcome="delivered", duration_ms=40
    )
    (line,) = _lines(captured)
    assert line["level"] == "info"
    assert line["reason"] is None
    assert "vorgang" not in line and "trace_id" not in line


@pytest.mark.parametrize("header", [None, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"])
def test_malformed_or_invalid_traceparent_gives_no_trace_id(header: str | None) -> None:
    assert logs.trace_id_of(header) is None


def test_sensitive_fields_are_redacted_whoever_logs_them(captured: io.StringIO) -> None:
    structlog.get_logger("somewhere").info(
        "careless",
        payload=b"<xml>Mustermann</xml>",
        key=b"hundesteuer/4711",
        password="hunter2",  # noqa: S106  # a marker, not a credential
        status=200,
    )
    (line,) = _lines(captured)
    assert line["payload"] == line["key"] == line["password"] == "[redacted]"
    assert line["status"] == 200
    for secret in ("Mustermann", "4711", "hunter2"):
        assert secret not in captured.getvalue()


def test_console_format_is_human_readable() -> None:
    with _configured(LogSettings(format=LogFormat.CONSOLE)) as stream:
        structlog.get_logger("rueckkanal.test").info("worker ready", role="all")
    text = stream.getvalue()
    assert "worker ready" in text and "role=all" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_format_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from rueckkanal.settings import Settings

    monkeypatch.setenv("RK_LOG__FORMAT", "console")
    assert Settings().log.format is LogFormat.CONSOLE


def test_readiness_needs_every_condition() -> None:
    readiness = Readiness()
    assert not readiness.status().ready  # nothing reported yet is not ready
    readiness.require("delivery.partitions", "delivery consumer has not joined its group")
    readiness.ready("config")
    status = readiness.status()
    assert not status.ready
    assert status.as_json()["reasons"] == {"delivery.partitions": "delivery consumer has not joined its group"}
    readiness.ready("delivery.partitions")
    assert readiness.status().ready
    readiness.not_ready("delivery.partitions", "rebalancing")
    assert readiness.status().as_json() == {
        "status": "not ready",
        "reasons": {"delivery.partitions": "rebalancing"},
        "conditions": {"config": True, "delivery.partitions": False},
    }


def test_readiness_checks_are_live_and_a_failing_check_means_not_ready() -> None:
    readiness = Readiness()
    producer = {"started": False}
    readiness.add_check("producer", lambda: None if producer["started"] else "producer not started")
    assert readiness.status().conditions == {"producer": "producer not started"}
    producer["started"] = True
    assert readiness.status().ready

    def broken() -> str | None:
        raise RuntimeError("boom")

    readiness.add_check("broken", broken)
    assert readiness.status().conditions["broken"] == "check failed: RuntimeError"
    assert not readiness.status().ready


def test_require_does_not_undo_a_reported_state() -> None:
    readiness = Readiness()
    readiness.ready("ingest.config")
    readiness.require("ingest.config", "not loaded")
    assert readiness.status().ready
