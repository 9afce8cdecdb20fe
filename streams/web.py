"""The worker's HTTP endpoints, served by faust's own web server on ``settings.web.port``.

==============  =====================================================================================
``/metrics``    Prometheus text format of the default registry: every metric of
                :mod:`rueckkanal.metrics` plus the client's process and platform collectors
``/healthz``    liveness: answered by the event loop itself, so a blocked or dead loop fails it; 200 JSON, or
                503 with the reason when a stage of the pipeline's :class:`~streams.obs.Progress` has had
                work waiting for ``web.stall_after_s`` without a step forward (a restart is the cure)
``/readyz``     readiness: 200 when every condition of the pipeline's :class:`~streams.obs.Readiness` is
                met, else 503 with the reasons as JSON
==============  =====================================================================================

Conditions registered here (stages add their own, see :mod:`streams.obs`):

``config``            the settings were validated (a pipeline exists only then)
``producer``          faust's Kafka producer has started and has not crashed
``faust.partitions``  only if the app has agents (ingest): faust's consumer has joined its group, is not in
                      the middle of a rebalance, and owns at least one active partition. A worker without
                      partitions (more replicas than partitions) is deliberately *not* ready.

Progress watched here: ``ingest`` has work waiting while the sampled lag of its assigned partitions (Fachverfahren
topics and the events topic) is above 0; the ingest stage reports each batch with ``progress.advanced("ingest")``.
The delivery dispatcher registers its own watch.

The faust consumer's assignment, readiness and lag are read in :func:`streams.faust_engine.track_faust_consumer`
(the lag arithmetic and its gauges are in :mod:`streams.obs`, beside the metrics).

faust registers a few built-in views of its own. ``/table`` serves table *contents* (our tables hold Vorgang
state) and ``/router``, ``/``-statistics and ``/graph`` describe internals; :func:`register_web_views` turns all
of them off, so the port serves our three paths and faust's plain ``/`` index (``{"status": "OK"}``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import faust
import structlog
from faust.web import Request, Response, View
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from streams.app import Pipeline
from streams.faust_engine import track_faust_consumer
from streams.obs import Progress, Readiness

log = structlog.get_logger("rueckkanal.web")

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"

# faust's built-in views that expose table data or internals; off before app.web is first created.
_FAUST_DEBUG_VIEWS = ("web_tables_enabled", "web_router_enabled", "web_stats_enabled", "web_graph_enabled")


def register_web_views(
    pipeline: Pipeline,
    readiness: Readiness | None = None,
    *,
    registry: CollectorRegistry = REGISTRY,
    sources: Mapping[str, str] | None = None,
) -> Readiness:
    """Add ``/metrics``, ``/healthz`` and ``/readyz`` to the pipeline's faust app; return the Readiness used.

    Call once per app, before the worker starts (faust refuses new routes once its server runs). ``readiness``
    defaults to ``pipeline.readiness``, the object the ingest and delivery stages report to; ``sources`` maps each
    Fachverfahren's topic to its name, for the gauges of open transactions.
    """
    app = pipeline.app
    conditions = pipeline.readiness if readiness is None else readiness
    _disable_faust_debug_views(app)
    conditions.ready("config")
    conditions.add_check("producer", lambda: _producer_problem(app))
    progress = pipeline.progress
    progress.stall_after_s = pipeline.settings.web.stall_after_s  # the one place settings meet the watch
    track_faust_consumer(app, conditions, progress, events_topic=pipeline.settings.topics.events, sources=sources)
    started = time.monotonic()

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            return self.bytes(encoder(registry), headers={"Content-Type": content_type})

    class HealthView(View):
        async def get(self, request: Request) -> Response:
            status, body = health(progress, uptime_s=time.monotonic() - started)
            return self.json(body, status=status)

    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            status = conditions.status()
            return self.json(status.as_json(), status=200 if status.ready else 503)

    app.page(METRICS_PATH, name="rueckkanal_metrics")(MetricsView)
    app.page(HEALTH_PATH, name="rueckkanal_healthz")(HealthView)
    app.page(READY_PATH, name="rueckkanal_readyz")(ReadyView)
    return conditions


def health(progress: Progress, *, uptime_s: float) -> tuple[int, dict[str, object]]:
    """The ``/healthz`` answer: 200 while every stage moves or is idle, 503 with the stalled stage as the reason."""
    problem = progress.problem()
    body: dict[str, object] = {"status": "ok" if problem is None else "stalled", "uptime_seconds": round(uptime_s, 3)}
    if problem is None:
        return 200, body
    body["reason"] = problem
    return 503, body


def _disable_faust_debug_views(app: faust.App) -> None:
    if "web" in app.__dict__:  # mode's cached_property stores the Web service in the instance dict
        raise RuntimeError("register_web_views must run before anything touches app.web")
    for setting in _FAUST_DEBUG_VIEWS:
        setattr(app.conf, setting, False)


def _producer_problem(app: faust.App) -> str | None:
    producer: Any = app.producer
    if producer.crashed:
        return "Kafka producer crashed"
    if not producer.started or producer.should_stop:
        return "Kafka producer not started"
    return None
