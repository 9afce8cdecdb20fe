"""Logging for the worker: one JSON object per line in production, a readable console format for development.

faust and aiokafka log through the standard library, so structlog is wired in as a stdlib formatter: their
lines and ours come out in the same format. Never pass payloads, Vorgang ids in clear or secrets to a logger.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog

from rueckkanal.settings import LogFormat, LogSettings

# Field names that must never carry their value into a log line: payloads, record keys (a Kafka key is the
# Vorgang key), Vorgang ids in clear and credentials. A last line of defence; callers must not pass them anyway.
REDACTED_FIELDS = frozenset(
    {
        "payload",
        "value",
        "body",
        "xml",
        "data",
        "key",
        "vorgang_id",
        "vorgang_key",
        "password",
        "secret",
        "token",
        "authorization",
        "client_secret",
    }
)
REDACTED = "[redacted]"


def redact_sensitive(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every field named in :data:`REDACTED_FIELDS`."""
    for name in REDACTED_FIELDS.intersection(event_dict):
        event_dict[name] = REDACTED
    return event_dict


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_sensitive,
]


def logging_config(settings: LogSettings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping; faust's Worker applies it, so it is a dict, not a function.

    Also sets the key of :func:`vorgang_ref` from ``settings.hash_key`` when the settings carry one.
    """
    if settings.hash_key is not None:
        configure_vorgang_hash(settings.hash_key.get_secret_value())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.format is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "rueckkanal": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": _SHARED_PROCESSORS,
            }
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "rueckkanal",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": settings.level},
        # asyncpg's pool logs a traceback every second while the database refuses connections; the store's callers
        # log each failed attempt once, by class and place.
        "loggers": {"aiokafka": {"level": "WARNING"}, "asyncpg": {"level": "ERROR"}},
    }


def configure_structlog() -> None:
    # Our lines carry no caller, thread or process fields, so the standard library need not collect them for every
    # record (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    structlog.configure(
        # filter_by_level first: a debug line in a hot path costs a level check, not the whole chain.
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def setup(settings: LogSettings) -> None:
    """For commands that do not run a faust Worker (which applies :func:`logging_config` itself)."""
    import logging.config

    configure_structlog()
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)


# --- one line per message outcome -----------------------------------------------------------------------------

_vorgang_hash_key: bytes | None = None
_VORGANG_REF_HEX = 16  # 64 bits: unique enough to follow one Vorgang through the logs, useless to reverse


def configure_vorgang_hash(key: str | bytes | None) -> None:
    """Set the secret key of :func:`vorgang_ref` (``None``: a random key for this process only).

    With one key for all replicas, the same Vorgang gets the same reference in every worker's log, so an
    operator can follow it without the logs ever holding the id. Without a key the references still hide
    the id but only match within one process.
    """
    global _vorgang_hash_key
    _vorgang_hash_key = key.encode() if isinstance(key, str) else key


def vorgang_ref(vorgang_key: str | bytes) -> str:
    """A short keyed hash (HMAC-SHA256) of a Vorgang key: the only form in which a Vorgang may appear in logs."""
    global _vorgang_hash_key
    if _vorgang_hash_key is None:
        _vorgang_hash_key = os.urandom(32)
    message = vorgang_key.encode() if isinstance(vorgang_key, str) else vorgang_key
    return hmac.new(_vorgang_hash_key, message, hashlib.sha256).hexdigest()[:_VORGANG_REF_HEX]


def trace_id_of(traceparent: str | bytes | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (``00-<trace-id>-<parent-id>-<flags>``), if well-formed."""
    if traceparent is None:
        return None
    text = traceparent.decode("ascii", "replace") if isinstance(traceparent, bytes) else traceparent
    parts = text.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or parts[1] == "0" * 32:
        return None
    try:
        int(parts[1], 16)
    except ValueError:
        return None
    return parts[1].lower()


_WARNING_OUTCOMES = frozenset({"dead_lettered", "rejected", "failed"})
_OUTCOME_LOGGER = logging.getLogger("rueckkanal.outcome")


def log_outcome(
    *,
    topic: str,
    partition: int,
    offset: int,
    source: str,
    outcome: str,
    duration_ms: float,
    reason: str | None = None,
    vorgang_key: str | bytes | None = None,
    traceparent: str | bytes | None = None,
    **fields: str | int | float | bool | None,
) -> None:
    """The canonical line for one finished message: ``event="message outcome"`` with fixed field names.

    ``topic``/``partition``/``offset`` locate the record, ``source`` is the Fachverfahren, ``outcome`` what became
    of it (e.g. ``rendered``, ``delivered``, ``duplicate``, ``dead_lettered``), ``reason`` a stable reason code
    (:class:`rueckkanal.errors.Reason`), ``duration_ms`` the processing time. The Vorgang key is logged only as
    ``vorgang`` = :func:`vorgang_ref`, the traceparent only as its ``trace_id``. Extra ``fields`` must be low-risk
    scalars (stage, portal, attempts, status code); payloads and ids never go in.

    One line per message makes this the costliest log call, so the line is built here and handed to the standard
    library logger in the form structlog's ``ProcessorFormatter`` renders (``wrap_for_formatter``), through the same
    shared processors: the same line as a structlog logger writes, for less (docs/benchmarks.md).
    """
    level, method = (logging.WARNING, "warning") if outcome in _WARNING_OUTCOMES else (logging.INFO, "info")
    if not _OUTCOME_LOGGER.isEnabledFor(level):
        return
    line: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "source": source,
        "outcome": outcome,
        "reason": reason,
        "duration_ms": round(duration_ms, 3),
        **fields,
    }
    if vorgang_key is not None:
        line["vorgang"] = vorgang_ref(vorgang_key)
    trace_id = trace_id_of(traceparent)
    if trace_id is not None:
        line["trace_id"] = trace_id
    line["event"] = "message outcome"
    for processor in _SHARED_PROCESSORS:
        line = processor(_OUTCOME_LOGGER, method, line)
    _OUTCOME_LOGGER.log(level, line, extra={"_logger": _OUTCOME_LOGGER, "_name": method})


def where(error: BaseException) -> str:
    """Where an exception was raised, as ``file:line in function``: for a log line, without the exception's message
    (which may quote a value)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
