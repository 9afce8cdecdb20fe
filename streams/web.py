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

For the faust consumer it also keeps two catalogue gauges current (the delivery dispatcher keeps its own):
``rueckkanal_assigned_partitions`` and ``rueckkanal_consumer_lag_messages`` with ``stage="lifecycle"`` for the
events topic and ``stage="ingest"`` for the Fachverfahren topics, sampled every :data:`LAG_INTERVAL_S` seconds.
Lag is the log end offset minus the committed offset (the next record the group would read after a restart), so
records fetched but not yet finished count as lag: a consumer that stops committing shows growing lag.

faust registers a few built-in views of its own. ``/table`` serves table *contents* (our tables hold Vorgang
state) and ``/router``, ``/``-statistics and ``/graph`` describe internals; :func:`register_web_views` turns all
of them off, so the port serves our three paths and faust's plain ``/`` index (``{"status": "OK"}``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import faust
import structlog
from faust.web import Request, Response, View
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from streams.obs import Progress, Readiness, process_metrics

if TYPE_CHECKING:
    from streams.app import Pipeline

log = structlog.get_logger("rueckkanal.web")

LAG_INTERVAL_S = 10.0
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"

# faust's built-in views that expose table data or internals; off before app.web is first created.
_FAUST_DEBUG_VIEWS = ("web_tables_enabled", "web_router_enabled", "web_stats_enabled", "web_graph_enabled")


def register_web_views(
    pipeline: Pipeline, readiness: Readiness | None = None, *, registry: CollectorRegistry = REGISTRY
) -> Readiness:
    """Add ``/metrics``, ``/healthz`` and ``/readyz`` to the pipeline's faust app; return the Readiness used.

    Call once per app, before the worker starts (faust refuses new routes once its server runs). ``readiness``
    defaults to ``pipeline.readiness``, the object the ingest and delivery stages report to.
    """
    app = pipeline.app
    conditions = pipeline.readiness if readiness is None else readiness
    _disable_faust_debug_views(app)
    conditions.ready("config")
    conditions.add_check("producer", lambda: _producer_problem(app))
    progress = pipeline.progress
    progress.stall_after_s = pipeline.settings.web.stall_after_s  # the one place settings meet the watch
    _track_faust_consumer(app, conditions, progress, events_topic=pipeline.settings.topics.events)
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


class _FaustConsumerState:
    """faust's consumer as seen through its rebalance signals, and its lag."""

    def __init__(self, app: faust.App, events_topic: str) -> None:
        self.app = app
        self.events_topic = events_topic
        self.joined = False
        self.rebalancing = False
        self.lag: dict[str, int] = {}  # stage → lag at the last sample

    async def on_assigned(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Logged before the flags flip, so that no /readyz 200 can precede this line.
        log.info("partitions assigned", stage="ingest", active_partitions=self.active_partitions())
        self.joined = True
        self.rebalancing = False

    async def on_revoked(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        self.rebalancing = True

    def active_partitions(self) -> int:
        return len(self.app.assignor.assigned_actives())

    def stage_of(self, topic: str) -> str | None:
        """lifecycle for the events topic, ingest for a Fachverfahren topic, None for faust's own topics."""
        if topic == self.events_topic:
            return "lifecycle"
        if topic.endswith("-changelog") or "__assignor" in topic:
            return None
        return "ingest"

    async def sample(self) -> None:
        """Set assigned partitions and lag per stage from the broker's end offsets and our committed offsets."""
        if not self.app.agents or not self.joined or self.rebalancing:
            return
        consumer: Any = self.app.consumer
        by_stage: dict[str, list[Any]] = {"ingest": [], "lifecycle": []}
        for tp in self.app.assignor.assigned_actives():
            stage = self.stage_of(tp.topic)
            if stage is not None:
                by_stage[stage].append(tp)
        tps = [tp for partitions in by_stage.values() for tp in partitions]
        ends = await consumer.highwaters(*tps) if tps else {}
        unknown = [tp for tp in tps if consumer._committed_offset.get(tp) is None]
        earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
        metrics = process_metrics()
        for stage, partitions in by_stage.items():
            lag = 0
            for tp in partitions:
                position = consumer._committed_offset.get(tp)
                if position is None:
                    position = earliest.get(tp)
                end = ends.get(tp)
                if position is not None and end is not None:
                    lag += max(0, end - position)
            metrics.consumer_lag.labels(stage, "").set(lag)
            metrics.assigned_partitions.labels(stage, "").set(len(partitions))
            self.lag[stage] = lag

    def work_waiting(self) -> bool:
        """Ingest has work: records behind the end of its assigned partitions at the last sample."""
        if not self.app.agents or not self.joined or self.rebalancing or self.active_partitions() == 0:
            return False
        return sum(self.lag.values()) > 0

    def problem(self) -> str | None:
        if not self.app.agents:
            return None  # nothing consumed through faust in this role (delivery reports its own consumer)
        if not self.joined:
            return "consumer has not joined its group yet"
        if self.rebalancing:
            return "consumer group is rebalancing"
        if self.active_partitions() == 0:
            return "no partitions assigned (more workers than partitions?)"
        return None


def _track_faust_consumer(app: faust.App, readiness: Readiness, progress: Progress, events_topic: str) -> None:
    state = _FaustConsumerState(app, events_topic)
    progress.watch("ingest", state.work_waiting)
    app.on_partitions_assigned.connect(cast(Any, state.on_assigned))  # mode types handlers too narrowly
    app.on_partitions_revoked.connect(cast(Any, state.on_revoked))
    readiness.add_check("faust.partitions", state.problem)

    async def sample_lag() -> None:
        try:
            await state.sample()
        except Exception as exc:  # a failed sample leaves the last values; the next one tries again
            log.warning("consumer lag sample failed", error=type(exc).__name__)

    app.timer(LAG_INTERVAL_S, name="rueckkanal_consumer_lag")(sample_lag)
