"""Creating the pipeline's topics at start-up, and refusing to run on topics or limits that would break a guarantee.

Kafka's default partitioner maps a key to ``hash(key) % partitions``. The lifecycle Table lives on the partitions
of ``rueckkanal.events``, and one Vorgang must always land on the same outbox partition, so events and outbox
must have exactly the configured partition count. Changing it later re-maps keys: that is a migration, not a
restart, and the worker says so instead of silently reordering.

Topic configuration (docs/operations.md, "Topics"): every topic the worker creates gets ``min.insync.replicas``
(``TopicSettings.insync_replicas``); the DLQ and the receipts topics get an explicit ``retention.ms``. Topics that
exist already are read back at every start (``check_topic_configs``): what breaks a guarantee is refused, what an
operator may have chosen on purpose is a warning.

Limits (``check_limits``): the largest payload a Fachverfahren may send, the producers' ``max_request_size`` and
the topics' ``max.message.bytes`` are checked against each other, so that no record within the limits can fail to
be written, and the size above which a dead letter is written as a stub is derived from them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from rueckkanal.errors import ConfigError
from rueckkanal.settings import Settings, TopicSettings

log = structlog.get_logger("rueckkanal.topics")

MIN_INSYNC = "min.insync.replicas"
RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"
CLEANUP_POLICY = "cleanup.policy"
DELETE_RETENTION_MS = "delete.retention.ms"
MIN_TOMBSTONE_MS = 24 * 3600 * 1000
MAX_MESSAGE_BYTES = "max.message.bytes"
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # the broker's message.max.bytes unless its operator changed it

# A rerouted record is the canonical JSON (the decoded event, the original key and value base64-encoded) with the
# source's headers and the pipeline's own: 4/3 of the payload plus this allowance for everything else (the event
# with every optional field, the key, headers, the record batch's framing).
REROUTE_ALLOWANCE = 16 * 1024
# Room kept below the smaller of max_request_size and the DLQ's max.message.bytes for what the dead letter adds
# to the original record (the rk.* headers, the batch framing).
DLQ_MARGIN = 4 * 1024
# The least any record limit of ours may be: a stub (original headers, size, SHA-256) or a rendered XÖV message
# is a few KB; the same floor as KafkaSettings.max_request_size.
MIN_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    exact: bool  # the partition count is part of the ordering contract
    configs: Mapping[str, str] = field(default_factory=dict)  # applied when the worker creates the topic


def pipeline_topics(settings: Settings, source_topics: Iterable[str], changelog: str | None = None) -> list[TopicSpec]:
    """The topics the worker creates if missing; ``changelog`` is the lifecycle Table's (with the ingest stage),
    compacted and co-partitioned with the events topic, created here so that it is checked like the others."""
    t = settings.topics
    durable = {MIN_INSYNC: str(t.insync_replicas)}
    configs = {
        t.dlq: durable | {RETENTION_MS: str(t.dlq_retention_ms)},
        t.receipts: durable | {RETENTION_MS: str(t.receipts_retention_ms)},
    }
    exact = [t.events, t.outbox]
    if changelog is not None:
        exact.append(changelog)
        configs[changelog] = durable | {CLEANUP_POLICY: "compact"}
    sources = sorted(set(source_topics)) if t.create_source_topics else []
    loose = [t.dlq, t.receipts, *sources]
    return [TopicSpec(name, t.partitions, t.replication_factor, True, configs.get(name, durable)) for name in exact] + [
        TopicSpec(name, t.partitions, t.replication_factor, False, configs.get(name, durable))
        for name in loose
        if name not in exact
    ]


async def ensure_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> dict[str, int]:
    """Create missing topics with their configs and return the partition counts known now.

    Raise ConfigError if an ordering-relevant topic has the wrong partition count. A topic another replica created
    a moment ago is left out of the counts: the broker may not describe it yet.
    """
    existing = await partition_counts(admin, [s.name for s in specs])
    missing = [s for s in specs if s.name not in existing]
    created: dict[str, int] = {}
    for spec in missing:
        topic = NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=dict(spec.configs))
        try:
            await admin.create_topics([topic])
            created[spec.name] = spec.partitions
        except TopicAlreadyExistsError:
            pass  # another replica created it a moment ago
    if created:
        log.info("topics created", topics=list(created))
    wrong = [
        f"{s.name} has {existing[s.name]} partitions, configured {s.partitions}"
        for s in specs
        if s.exact and s.name in existing and existing[s.name] != s.partitions
    ]
    if wrong:
        raise ConfigError(
            "partition counts do not match RK_TOPICS__PARTITIONS (changing them re-maps Vorgänge to "
            "partitions and needs a migration): " + "; ".join(wrong)
        )
    return existing | created


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """The partition count of each named topic that exists."""
    if not names:
        return {}  # an empty topic list in a metadata request asks for every topic
    described = await admin.describe_topics(names)
    counts: dict[str, int] = {}
    for topic in described:
        if topic.get("error_code", 0) == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The effective configs (set on the topic or the broker's defaults) of each named topic the broker describes."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                continue  # not there (yet): nothing to check
            configs[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return configs


# -- the checks: pure functions of settings and what the broker said --------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One way a topic differs from the settings; ``refuse`` if it breaks a guarantee, else a warning."""

    topic: str
    problem: str
    refuse: bool


def check_topic_configs(
    topics: TopicSettings, configs: Mapping[str, Mapping[str, str]], changelog: str | None = None
) -> list[Finding]:
    """Compare the pipeline's existing topics with the settings.

    Refused (a guarantee breaks): the DLQ keeping dead letters shorter than ``topics.dlq_retention_ms``, by time or
    by a size limit, or compacting them (a dead letter per key would replace the one before); a dead letter is the
    only copy of a record that could not be processed. To run with a shorter DLQ retention on purpose, configure
    it: the setting is the operator's statement of how long dead letters are kept.
    Warned (an operator may have chosen it): receipts kept shorter than ``topics.receipts_retention_ms``;
    ``min.insync.replicas`` below ``topics.insync_replicas`` on events, outbox, DLQ or receipts (less durability
    against a broker's loss, more availability).

    The lifecycle Table's ``changelog`` (:func:`check_changelog`) is checked too when given.
    """
    findings: list[Finding] = [] if changelog is None else check_changelog(changelog, configs.get(changelog))
    dlq = configs.get(topics.dlq)
    if dlq is not None:
        retention = _int(dlq, RETENTION_MS)
        if retention is not None and _shorter(retention, topics.dlq_retention_ms):
            findings.append(
                Finding(topics.dlq, f"{RETENTION_MS} {retention} below topics.dlq_retention_ms", refuse=True)
            )
        size_limit = _int(dlq, RETENTION_BYTES)
        if size_limit is not None and size_limit >= 0:
            findings.append(Finding(topics.dlq, f"{RETENTION_BYTES} {size_limit} deletes dead letters by size", True))
        if "compact" in dlq.get(CLEANUP_POLICY, ""):
            findings.append(Finding(topics.dlq, f"{CLEANUP_POLICY} compacts dead letters of one key", refuse=True))
    receipts = configs.get(topics.receipts)
    if receipts is not None:
        retention = _int(receipts, RETENTION_MS)
        if retention is not None and _shorter(retention, topics.receipts_retention_ms):
            findings.append(
                Finding(topics.receipts, f"{RETENTION_MS} {retention} below topics.receipts_retention_ms", False)
            )
    checked = (topics.events, topics.outbox, topics.dlq, topics.receipts) + ((changelog,) if changelog else ())
    for name in checked:
        insync = _int(configs.get(name, {}), MIN_INSYNC)
        if insync is not None and insync < topics.insync_replicas:
            findings.append(
                Finding(name, f"{MIN_INSYNC} {insync} below the configured {topics.insync_replicas}", refuse=False)
            )
    return findings


def check_changelog(name: str, configs: Mapping[str, str] | None) -> list[Finding]:
    """The lifecycle Table's changelog: the only copy of every open Vorgang's state.

    Refused: not compacted (``cleanup.policy`` without ``compact``: the log grows for ever and a recovery reads
    every status ever reported), or deleting by time or size as well (``compact,delete`` with a finite
    ``retention.ms`` or ``retention.bytes``: a Vorgang open longer than that loses its state, and its next status
    is judged as a new Vorgang's). Warned: ``delete.retention.ms`` under a day (:data:`MIN_TOMBSTONE_MS`): a
    local store offline longer than that can miss a removed Vorgang's tombstone and keep it until the retention
    sweep removes it again; ``min.insync.replicas`` is checked with the pipeline's topics.
    """
    if configs is None:
        return []
    findings: list[Finding] = []
    policy = configs.get(CLEANUP_POLICY, "")
    if "compact" not in policy:
        findings.append(Finding(name, f"{CLEANUP_POLICY} {policy or 'delete'} does not compact the state", True))
    elif "delete" in policy:
        retention, size_limit = _int(configs, RETENTION_MS), _int(configs, RETENTION_BYTES)
        if retention is not None and retention >= 0:
            findings.append(Finding(name, f"{CLEANUP_POLICY} {policy} deletes state after {RETENTION_MS}", True))
        if size_limit is not None and size_limit >= 0:
            findings.append(Finding(name, f"{CLEANUP_POLICY} {policy} deletes state by {RETENTION_BYTES}", True))
    tombstones = _int(configs, DELETE_RETENTION_MS)
    if tombstones is not None and 0 <= tombstones < MIN_TOMBSTONE_MS:
        findings.append(
            Finding(
                name,
                f"{DELETE_RETENTION_MS} {tombstones} is under a day: a store offline longer misses "
                "removals until the retention sweep repeats them",
                refuse=False,
            )
        )
    return findings


def max_message_bytes(configs: Mapping[str, Mapping[str, str]], topic: str) -> int:
    """A topic's ``max.message.bytes``; Kafka's default where the broker did not describe the topic."""
    value = _int(configs.get(topic, {}), MAX_MESSAGE_BYTES)
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES if value is None else value


def rerouted_size(payload_bytes: int) -> int:
    """An upper bound of the rerouted record (streams/ingest.py ``_reroute``) of a payload of this size."""
    return 4 * math.ceil(payload_bytes / 3) + REROUTE_ALLOWANCE


def check_limits(
    max_payload_bytes: Mapping[str, int],
    max_request_size: int,
    *,
    events_max_message_bytes: int,
    outbox_max_message_bytes: int,
    dlq_max_message_bytes: int,
) -> int:
    """Check the size limits against each other and return the DLQ record limit; raise ConfigError naming the rules.

    ``max_payload_bytes`` is each Fachverfahren's (by name). The rules, for every Fachverfahren's largest payload:

    1. its rerouted record (4/3 of the payload plus ``REROUTE_ALLOWANCE``) fits ``kafka.max_request_size`` and the
       events topic's ``max.message.bytes``: no accepted record can fail to take the hop through the events topic;
    2. it fits the DLQ record limit (below) with ``REROUTE_ALLOWANCE`` for its key and headers: every record the
       ingest accepts can be dead-lettered whole, and so replayed; larger records are refused as too large and
       dead-lettered as stubs.

    The DLQ record limit is ``min(max_request_size, dlq max.message.bytes) - DLQ_MARGIN``: a dead letter above it is
    written as a stub. ``max_request_size`` may exceed the DLQ's ``max.message.bytes`` by any amount, since the
    limit takes the smaller, but the limit, and the outbox's ``max.message.bytes``, must be at least
    ``MIN_RECORD_BYTES`` (a stub, a rendered message).
    """
    record_limit = min(max_request_size, dlq_max_message_bytes) - DLQ_MARGIN
    broken: list[str] = []
    if record_limit < MIN_RECORD_BYTES:
        broken.append(
            f"the DLQ record limit min(kafka.max_request_size {max_request_size}, DLQ {MAX_MESSAGE_BYTES} "
            f"{dlq_max_message_bytes}) - {DLQ_MARGIN} is {record_limit}, below {MIN_RECORD_BYTES}"
        )
    if outbox_max_message_bytes < MIN_RECORD_BYTES:
        broken.append(f"outbox {MAX_MESSAGE_BYTES} {outbox_max_message_bytes} is below {MIN_RECORD_BYTES}")
    for name, payload in sorted(max_payload_bytes.items()):
        rerouted = rerouted_size(payload)
        if rerouted > max_request_size:
            broken.append(
                f"{name}: max_payload_bytes {payload} makes rerouted records of up to {rerouted} bytes, "
                f"above kafka.max_request_size {max_request_size}"
            )
        if rerouted > events_max_message_bytes:
            broken.append(
                f"{name}: max_payload_bytes {payload} makes rerouted records of up to {rerouted} bytes, "
                f"above the events topic's {MAX_MESSAGE_BYTES} {events_max_message_bytes}"
            )
        if payload + REROUTE_ALLOWANCE > record_limit:
            broken.append(
                f"{name}: max_payload_bytes {payload} does not leave {REROUTE_ALLOWANCE} bytes below the DLQ "
                f"record limit {record_limit}, so an accepted record could not be dead-lettered whole"
            )
    if broken:
        raise ConfigError("size limits do not fit each other: " + "; ".join(broken))
    return record_limit


def _int(configs: Mapping[str, str], name: str) -> int | None:
    value = configs.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _shorter(actual_ms: int, wanted_ms: int) -> bool:
    """Whether a retention of ``actual_ms`` keeps records shorter than ``wanted_ms``; -1 is forever."""
    if actual_ms < 0:
        return False
    return wanted_ms < 0 or actual_ms < wanted_ms
