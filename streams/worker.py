"""The worker process and the composition root: settings, mappings, renderer, logs, stages and web views are wired
here and nowhere else. One faust Worker runs the ingest stage, the delivery stage, or both."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence

import faust
import structlog
from aiokafka.admin import AIOKafkaAdminClient

from adapters.inbound.config import FachverfahrenConfig, load_fachverfahren
from adapters.portal.xoev_http import XoevHttpPortal
from adapters.portal.zbp import ZbpPortal
from rueckkanal.errors import ConfigError
from rueckkanal.lifecycle import Policy
from rueckkanal.metrics import Metrics
from rueckkanal.settings import DEFAULT_TARGET, Settings, ZbpSettings
from rueckkanal.xoev import MessageRenderer
from streams import logs
from streams.app import Pipeline, Role, create_pipeline, kafka_client_options
from streams.delivery.breaker import CircuitBreaker
from streams.delivery.dispatcher import DeliveryDispatcher, DispatcherConfig
from streams.delivery.retry import RetryPolicy
from streams.delivery.service import DeliveryService
from streams.ingest import IngestStage
from streams.kafka_log import KafkaLog
from streams.obs import Progress, Readiness, process_metrics
from streams.topics import (
    TopicSpec,
    check_limits,
    check_topic_configs,
    ensure_topics,
    max_message_bytes,
    partition_counts,
    pipeline_topics,
    topic_configs,
)
from streams.web import register_web_views

log = structlog.get_logger("rueckkanal.worker")


class RueckkanalWorker(faust.Worker):
    """faust's Worker that creates the pipeline's topics first and says in one structured line when it is ready."""

    def __init__(
        self,
        pipeline: Pipeline,
        topics: list[TopicSpec],
        role: Role,
        services: list[DeliveryService],
        ingest: IngestStage | None = None,
        payload_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.topic_specs = topics
        self.role = role
        self.ingest = ingest
        self.payload_limits = dict(payload_limits or {})  # max_payload_bytes per Fachverfahren the ingest reads
        settings = pipeline.settings
        super().__init__(
            pipeline.app,
            *services,
            loglevel=settings.log.level,
            logging_config=logs.logging_config(settings.log),
            redirect_stdouts=False,
        )

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        """A stop on a signal; if it has not ended after the drain deadline and :data:`STOP_MARGIN_S`, the process
        ends without finishing it (exit 75), as the orchestrator's SIGKILL would.

        Nothing is acknowledged before its outcome is written, so ending there loses nothing: the next owner reads
        the unacknowledged records again. The stop can hang only on what nobody answers (a broker that is gone);
        the deadline makes that visible in one log line, under any supervisor, not only under Kubernetes.
        """
        first = not self._signal_stop_time
        super()._schedule_shutdown(signal)
        if first:
            deadline = self.pipeline.settings.delivery.drain_deadline_s + STOP_MARGIN_S
            watchdog = threading.Timer(deadline, _stop_overdue, args=(signal.name, deadline))
            watchdog.daemon = True
            watchdog.start()

    async def on_first_start(self) -> None:
        await super().on_first_start()  # sets up logging first: what follows must be seen, a refusal above all
        admin = AIOKafkaAdminClient(**kafka_client_options(self.pipeline.settings.kafka))
        await admin.start()
        try:
            counts = await ensure_topics(admin, self.topic_specs)
            await self._check_topics(admin)
            if self.ingest is not None:
                unknown = [t for t in self.ingest.source_topics if t not in counts]
                self.ingest.co_partition(counts | await partition_counts(admin, unknown))
        except ConfigError as error:
            log.critical("refusing to start", reason=error.reason.value, error=error.message)
            raise
        finally:
            await admin.close()

    async def _check_topics(self, admin: AIOKafkaAdminClient) -> None:
        """Check the pipeline topics' configs and the size limits (streams/topics.py); raise ConfigError to refuse."""
        settings = self.pipeline.settings
        t = settings.topics
        changelog = self.ingest.changelog_topic_name if self.ingest is not None else None
        configs = await topic_configs(admin, [t.events, t.outbox, t.dlq, t.receipts, *filter(None, [changelog])])
        for name in (t.events, t.outbox, t.dlq):
            if name not in configs:
                log.warning("topic config not readable yet, checking against Kafka's default", topic=name)
        findings = check_topic_configs(t, configs, changelog)
        for finding in findings:
            if not finding.refuse:
                log.warning("topic config differs from the settings", topic=finding.topic, problem=finding.problem)
        refused = [f"{f.topic}: {f.problem}" for f in findings if f.refuse]
        if refused:
            raise ConfigError("topic configs break a guarantee: " + "; ".join(refused))
        record_limit = check_limits(
            self.payload_limits,
            settings.kafka.max_request_size,
            events_max_message_bytes=max_message_bytes(configs, t.events),
            outbox_max_message_bytes=max_message_bytes(configs, t.outbox),
            dlq_max_message_bytes=max_message_bytes(configs, t.dlq),
        )
        if self.ingest is not None:
            self.ingest.record_limit = record_limit  # a dead letter above this size is written as a stub
        log.info("topics and limits checked", dlq_record_limit=record_limit)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        app = self.pipeline.app
        web = f"{app.conf.web_bind}:{app.conf.web_port}"
        _freeze_startup_objects()
        log.info("worker ready", app_id=app.conf.id, role=self.role.value, web=web)


# Leaving the group and flushing after the drain; below the chart's terminationGraceMarginSeconds (15), so that the
# worker's own deadline ends the stop, with its log line, before the kubelet's SIGKILL does.
STOP_MARGIN_S = 10.0
EX_STOP_OVERDUE = 75  # EX_TEMPFAIL, as for a batch Kafka would not take: what was not finished is read again


def _stop_overdue(signal_name: str, deadline: float) -> None:
    log.critical(
        "stop overdue; exiting without finishing it (unacknowledged records are read again by the next owner)",
        signal=signal_name,
        deadline_s=deadline,
    )
    logging.shutdown()
    os._exit(EX_STOP_OVERDUE)


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, the app, the schema, code lists) out of the garbage collector's sight.

    Those objects live as long as the process; a full collection that walks them stops the event loop for tens of
    milliseconds every few seconds under load, and every record in flight waits. Frozen, a full collection walks
    only what was allocated since (the CPython ``gc.freeze`` documentation recommends it for long-lived servers).
    """
    gc.collect()
    gc.freeze()


def build_worker(settings: Settings, role: Role, target: str | None = None) -> RueckkanalWorker:
    """Wire settings, Fachverfahren mappings, renderer and stages into one runnable worker.

    With the delivery stage, one dispatcher per delivery target (``settings.target_names()``), or only ``target``.
    """
    logs.configure_structlog()
    pipeline = create_pipeline(settings)
    fachverfahren = load_fachverfahren(settings.fachverfahren_dir)
    # /metrics, /healthz, /readyz on settings.web.port (streams/web.py)
    register_web_views(pipeline, sources={fv.topic: fv.name for fv in fachverfahren})
    metrics = process_metrics()
    ingest: IngestStage | None = None
    services: list[DeliveryService] = []
    if role in (Role.ALL, Role.INGEST):
        ingest = IngestStage(
            pipeline,
            fachverfahren,
            MessageRenderer(settings.xoev),
            metrics,
            policy=Policy(settings.ingest.lifecycle_policy),
        )
    targets: dict[str, str] = {}
    if role in (Role.ALL, Role.DELIVERY):
        names = settings.target_names()
        if target is not None and target not in names:
            raise ConfigError(f"unknown delivery target {target!r}; configured: {', '.join(names)}")
        for name in [target] if target is not None else names:
            dispatcher = build_dispatcher(
                settings, pipeline.readiness, metrics, pipeline.progress, target=name, fachverfahren=fachverfahren
            )
            services.append(DeliveryService(dispatcher))
            targets[name] = dispatcher.config.portal_name
    elif target is not None:
        raise ConfigError("--target needs --role delivery or all")
    zbp_targets = [name for name in targets if isinstance(settings.targets.get(name), ZbpSettings)]
    metrics.initialise(sources=[fv.name for fv in fachverfahren], targets=targets, zbp_targets=zbp_targets)
    source_topics = ingest.source_topics if ingest is not None else []
    payload_limits = {fv.name: fv.max_payload_bytes for fv in fachverfahren} if ingest is not None else {}
    changelog = ingest.changelog_topic_name if ingest is not None else None
    return RueckkanalWorker(
        pipeline,
        pipeline_topics(settings, source_topics, changelog),
        role,
        services,
        ingest,
        payload_limits=payload_limits,
    )


def build_dispatcher(
    settings: Settings,
    readiness: Readiness,
    metrics: Metrics,
    progress: Progress | None = None,
    *,
    target: str = DEFAULT_TARGET,
    fachverfahren: Sequence[FachverfahrenConfig] = (),
) -> DeliveryDispatcher:
    """The dispatcher of one delivery target, with that target's delivery bounds (``Settings.delivery_for``). The
    default target (``portal``) keeps the consumer group ``{app_id}.delivery`` of single-portal deployments; every
    other target reads as ``{app_id}.delivery.{name}``."""
    d = settings.delivery_for(target)
    portal = build_portal(settings, target, fachverfahren, metrics)
    config = DispatcherConfig(
        outbox_topic=settings.topics.outbox,
        dlq_topic=settings.topics.dlq,
        receipts_topic=settings.topics.receipts,
        group_id=delivery_group(settings.app_id, target),
        portal_name=portal.name,
        target=target,
        window_per_partition=d.window_per_partition,
        max_concurrent_requests=d.max_concurrent_requests,
        commit_interval_s=d.commit_interval_s,
        drain_deadline_s=d.drain_deadline_s,
        max_request_size=settings.kafka.max_request_size,
    )
    retry = RetryPolicy(
        base_delay_s=d.retry_base_delay_s,
        max_delay_s=d.retry_max_delay_s,
        retry_after_cap_s=d.retry_after_cap_s,
        budget_s=d.retry_budget_s,
    )
    breaker = CircuitBreaker(
        failure_threshold=d.breaker_failure_threshold, open_s=d.breaker_open_s, max_open_s=d.breaker_max_open_s
    )
    log = KafkaLog(
        kafka_client_options(settings.kafka),
        group=config.group_id,
        max_poll_records=config.fetch_max_records,
        max_request_size=config.max_request_size,
    )
    return DeliveryDispatcher(config, log, portal, metrics, retry, breaker, readiness, progress)


def delivery_group(app_id: str, target: str) -> str:
    """The consumer group of a delivery target on the outbox."""
    return f"{app_id}.delivery" if target == DEFAULT_TARGET else f"{app_id}.delivery.{target}"


def build_portal(
    settings: Settings, target: str, fachverfahren: Sequence[FachverfahrenConfig], metrics: Metrics
) -> XoevHttpPortal | ZbpPortal:
    """The adapter of one delivery target, from its settings; a key or certificate that cannot be used stops the
    worker here, at start."""
    if target == DEFAULT_TARGET:
        return XoevHttpPortal(settings.portal)
    config = settings.targets[target]
    if isinstance(config, ZbpSettings):
        shortened = metrics.zbp_fields_shortened
        zbp = ZbpPortal(
            config,
            fachverfahren or load_fachverfahren(settings.fachverfahren_dir),
            sender_name=settings.xoev.autor.name or settings.xoev.produkthersteller,
            on_shortened=lambda field: shortened.labels(target, field).inc(),
        )
        # Read at every scrape, so a rotated certificate shows its own date without a restart.
        metrics.zbp_certificate_expiry.labels(target).set_function(lambda: zbp.signer.certificate_not_after)
        return zbp
    return XoevHttpPortal(config)
