"""The pipeline's faust app and topics, built from :class:`~rueckkanal.settings.Settings` by a factory.

Built by a factory rather than at import time, so tests can point it at their own broker and topic names, and the
CLI can build it after the settings are validated. Nothing is registered on the app here: the composition root
(:func:`streams.worker.build_worker`) adds the stages and the web views.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import faust

from rueckkanal.settings import KafkaSecurity, KafkaSettings, Settings
from streams.faust_engine import RueckkanalApp
from streams.obs import Progress, Readiness
from streams.partitioner import partition_for
from streams.topics import pipeline_topics


class Role(StrEnum):
    """What one worker process runs; both stages by default, or one of them to scale them apart."""

    ALL = "all"
    INGEST = "ingest"
    DELIVERY = "delivery"


@dataclass(frozen=True)
class Topics:
    """The pipeline's own topics; source topics belong to the Fachverfahren and are added by the ingest stage."""

    events: faust.TopicT
    outbox: faust.TopicT
    dlq: faust.TopicT
    receipts: faust.TopicT


@dataclass(frozen=True)
class Pipeline:
    settings: Settings
    app: faust.App
    topics: Topics
    # Stages report to this; /readyz answers from it (streams/obs.py, streams/web.py).
    readiness: Readiness = field(default_factory=Readiness)
    # Stages report their steps forward to this; /healthz fails for a stage stalled with work waiting.
    progress: Progress = field(default_factory=Progress)


def broker_urls(kafka: KafkaSettings) -> list[str]:
    return [f"kafka://{server.strip()}" for server in kafka.bootstrap.split(",") if server.strip()]


def broker_credentials(kafka: KafkaSettings) -> Any:
    """faust's credentials object for SASL/TLS, or None for PLAINTEXT."""
    context = None
    if kafka.security_protocol in (KafkaSecurity.SSL, KafkaSecurity.SASL_SSL):
        context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
        if kafka.ssl_certfile:
            context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    if kafka.security_protocol in (KafkaSecurity.SASL_PLAINTEXT, KafkaSecurity.SASL_SSL):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        mechanism = (kafka.sasl_mechanism or "PLAIN").upper()
        if mechanism.startswith("SCRAM"):
            return faust.SASLCredentials(
                username=kafka.sasl_username, password=password, mechanism=mechanism, ssl_context=context
            )
        return faust.SASLCredentials(username=kafka.sasl_username, password=password, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options for plain aiokafka clients (admin, delivery), equal to what faust is given."""
    options: dict[str, Any] = {
        "bootstrap_servers": [server.strip() for server in kafka.bootstrap.split(",") if server.strip()],
        "security_protocol": kafka.security_protocol.value,
    }
    credentials = broker_credentials(kafka)
    if isinstance(credentials, faust.SASLCredentials):
        options |= {
            "sasl_mechanism": credentials.mechanism.value,
            "sasl_plain_username": credentials.username,
            "sasl_plain_password": credentials.password,
            "ssl_context": credentials.ssl_context,
        }
    elif isinstance(credentials, faust.SSLCredentials):
        options["ssl_context"] = credentials.context
    return options


def create_pipeline(settings: Settings) -> Pipeline:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = RueckkanalApp(
        settings.app_id,
        # faust reads unprefixed variables (WEB_PORT, BROKER_COMMIT_INTERVAL, APP_DATADIR, ...) over the values
        # below; Kubernetes sets WEB_PORT=tcp://... for any Service named "web". Our settings come from RK_* only.
        env={},
        broker=broker_urls(settings.kafka),
        broker_credentials=broker_credentials(settings.kafka),
        autodiscover=False,
        store=f"{settings.state.store}://",  # the lifecycle Table's (streams/ingest.py, docs/operations.md)
        table_standby_replicas=settings.state.standby_replicas,
        datadir=str(settings.data_dir / settings.app_id),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        topic_allow_declare=True,
        # Idempotent with acks=all (streams/faust_engine.py); no record larger than the limits were checked for.
        producer_acks=-1,
        producer_max_request_size=settings.kafka.max_request_size,
        # No linger: aiokafka keeps one produce request in flight per broker, and what is sent meanwhile waits for
        # it and leaves as the next request. Under load the requests grow by themselves; a slow stream pays no wait.
        producer_linger=0.0,
        producer_partitioner=partition_for,  # murmur2 as aiokafka's default, with recent keys cached
        # Less work repeated after a crash than with faust's default of 2.8 s, and two commits a second are nothing
        # for the broker.
        broker_commit_interval=0.5,
        web_enabled=True,
        web_bind=settings.web.host,
        web_port=settings.web.port,
        web_in_thread=False,
    )
    configs = {spec.name: spec.configs for spec in pipeline_topics(settings, [])}
    topics = Topics(
        events=_internal_topic(app, settings.topics.events, settings, configs),
        outbox=_internal_topic(app, settings.topics.outbox, settings, configs),
        dlq=_internal_topic(app, settings.topics.dlq, settings, configs),
        receipts=_internal_topic(app, settings.topics.receipts, settings, configs),
    )
    return Pipeline(settings=settings, app=app, topics=topics)


def _internal_topic(
    app: faust.App, name: str, settings: Settings, configs: Mapping[str, Mapping[str, str]]
) -> faust.TopicT:
    """One of the pipeline's topics; should faust declare it before the worker does, with the same configs."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topics.partitions,
        replicas=settings.topics.replication_factor,
        internal=True,
        config=dict(configs.get(name, {})),
    )
