"""Logging for the worker: one JSON object per line in production, a readable console format for development.

faust and aiokafka log through the standard library, so structlog is wired in as a stdlib formatter: their
lines and ours come out in the same format. Never pass payloads, Vorgang ids in clear or secrets to a logger.
"""

from __future__ import annotations

from typing import Any

import structlog

from rueckkanal.settings import LogFormat, LogSettings

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(settings: LogSettings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping; faust's Worker applies it, so it is a dict, not a function."""
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
        "loggers": {"aiokafka": {"level": "WARNING"}},
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
