"""Creating the pipeline's topics at start-up, and refusing to run on topics that would break ordering.

Kafka's default partitioner maps a key to ``hash(key) % partitions``. The lifecycle Table lives on the partitions
of ``rueckkanal.events``, and one Vorgang must always land on the same outbox partition, so events and outbox
must have exactly the configured partition count. Changing it later re-maps keys: that is a migration, not a
restart, and the worker says so instead of silently reordering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rueckkanal.errors import ConfigError
from rueckkanal.settings import Settings

log = structlog.get_logger("rueckkanal.topics")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    exact: bool  # the partition count is part of the ordering contract


def pipeline_topics(settings: Settings, source_topics: Iterable[str]) -> list[TopicSpec]:
    t = settings.topics
    exact = [t.events, t.outbox]
    sources = sorted(set(source_topics)) if t.create_source_topics else []
    loose = [t.dlq, t.receipts, *sources]
    return [TopicSpec(name, t.partitions, t.replication_factor, True) for name in exact] + [
        TopicSpec(name, t.partitions, t.replication_factor, False) for name in loose if name not in exact
    ]


async def ensure_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> dict[str, int]:
    """Create missing topics and return the partition counts known now.

    Raise ConfigError if an ordering-relevant topic has the wrong partition count. A topic another replica created
    a moment ago is left out of the counts: the broker may not describe it yet.
    """
    existing = await partition_counts(admin, [s.name for s in specs])
    missing = [s for s in specs if s.name not in existing]
    created: dict[str, int] = {}
    for spec in missing:
        try:
            await admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication_factor)])
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
