from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rueckkanal.errors import ConfigError
from rueckkanal.settings import Settings, TopicSettings
from streams.topics import (
    DLQ_MARGIN,
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    MIN_RECORD_BYTES,
    REROUTE_ALLOWANCE,
    check_limits,
    check_topic_configs,
    ensure_topics,
    max_message_bytes,
    pipeline_topics,
    rerouted_size,
    topic_configs,
)

DAY_MS = 24 * 60 * 60 * 1000


def test_events_and_outbox_must_match_the_partition_count_exactly() -> None:
    specs = pipeline_topics(Settings(topics=TopicSettings(partitions=6)), ["fv.hundesteuer.status"])
    exact = {s.name for s in specs if s.exact}
    assert exact == {"rueckkanal.events", "rueckkanal.outbox"}
    assert {s.name for s in specs} == exact | {"rueckkanal.dlq", "rueckkanal.receipts", "fv.hundesteuer.status"}
    assert all(s.partitions == 6 for s in specs)


def test_source_topics_are_left_to_their_owners_when_asked() -> None:
    settings = Settings(topics=TopicSettings(create_source_topics=False))
    names = {s.name for s in pipeline_topics(settings, ["fv.hundesteuer.status"])}
    assert "fv.hundesteuer.status" not in names
    assert "rueckkanal.dlq" in names


def test_every_topic_gets_min_insync_replicas_and_dlq_and_receipts_an_explicit_retention() -> None:
    topics = TopicSettings(replication_factor=3, dlq_retention_ms=400 * DAY_MS, receipts_retention_ms=30 * DAY_MS)
    specs = {s.name: s.configs for s in pipeline_topics(Settings(topics=topics), ["fv.hundesteuer.status"])}
    assert {name: c["min.insync.replicas"] for name, c in specs.items()} == dict.fromkeys(specs, "2")
    assert specs[topics.dlq]["retention.ms"] == str(400 * DAY_MS)
    assert specs[topics.receipts]["retention.ms"] == str(30 * DAY_MS)
    assert "retention.ms" not in specs[topics.events]  # events and outbox: the operator's broker default
    assert "retention.ms" not in specs["fv.hundesteuer.status"]


class FakeAdmin:
    """The admin calls the topic code makes, against an in-memory broker."""

    def __init__(self, topics: Mapping[str, int] | None = None, configs: Mapping[str, dict[str, str]] | None = None):
        self.topics = dict(topics or {})
        self.configs = {name: dict(c) for name, c in (configs or {}).items()}
        self.race: set[str] = set()  # created by "another replica" between describe and create

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {"topic": n, "error_code": 0, "partitions": [{}] * self.topics[n]}
            if n in self.topics
            else {"topic": n, "error_code": 3, "partitions": []}
            for n in names
        ]

    async def create_topics(self, new: list[NewTopic]) -> None:
        for topic in new:
            if topic.name in self.race or topic.name in self.topics:
                raise TopicAlreadyExistsError
            self.topics[topic.name] = topic.num_partitions
            self.configs[topic.name] = dict(topic.topic_configs)

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        class Response:
            def __init__(self, body: dict[str, Any]) -> None:
                self.body = body

            def to_object(self) -> dict[str, Any]:
                return self.body

        entries = [
            {
                "error_code": 0 if r.name in self.configs else 3,
                "resource_name": r.name,
                "config_entries": [
                    {"config_names": k, "config_value": v} for k, v in self.configs.get(r.name, {}).items()
                ],
            }
            for r in resources
        ]
        return [Response({"resources": entries})]


async def test_missing_topics_are_created_with_their_configs() -> None:
    settings = Settings(topics=TopicSettings(replication_factor=1))
    specs = pipeline_topics(settings, [])
    admin = FakeAdmin(topics={settings.topics.events: 12}, configs={settings.topics.events: {}})
    counts = await ensure_topics(admin, specs)  # type: ignore[arg-type]
    assert counts == dict.fromkeys((s.name for s in specs), 12)
    assert admin.configs[settings.topics.dlq] == {
        "min.insync.replicas": "1",
        "retention.ms": str(settings.topics.dlq_retention_ms),
    }
    assert admin.configs[settings.topics.events] == {}  # an existing topic is not altered, only checked


async def test_topic_configs_are_read_for_the_topics_the_broker_describes() -> None:
    admin = FakeAdmin(configs={"a": {"retention.ms": "5", "max.message.bytes": "2000000"}})
    configs = await topic_configs(admin, ["a", "missing"])  # type: ignore[arg-type]
    assert configs == {"a": {"retention.ms": "5", "max.message.bytes": "2000000"}}
    assert max_message_bytes(configs, "a") == 2_000_000
    assert max_message_bytes(configs, "missing") == KAFKA_DEFAULT_MAX_MESSAGE_BYTES


def _configs(topics: TopicSettings, **changes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Configs as the worker creates them, with some topics' values changed."""
    created = {s.name: dict(s.configs) for s in pipeline_topics(Settings(topics=topics), [])}
    for name, change in changes.items():
        created[getattr(topics, name)] |= change
    return created


def test_topics_as_created_pass_the_check() -> None:
    topics = TopicSettings(replication_factor=3)
    assert check_topic_configs(topics, _configs(topics)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"retention.ms": str(7 * DAY_MS)}, "retention.ms"),
        ({"retention.bytes": "1073741824"}, "retention.bytes"),
        ({"cleanup.policy": "compact,delete"}, "cleanup.policy"),
    ],
)
def test_a_dlq_that_loses_dead_letters_is_refused(change: dict[str, str], problem: str) -> None:
    topics = TopicSettings()
    findings = check_topic_configs(topics, _configs(topics, dlq=change))
    assert [(f.topic, f.refuse) for f in findings] == [(topics.dlq, True)]
    assert problem in findings[0].problem


def test_a_dlq_kept_forever_or_longer_passes_and_a_configured_shorter_retention_is_accepted() -> None:
    topics = TopicSettings()
    assert check_topic_configs(topics, _configs(topics, dlq={"retention.ms": "-1"})) == []
    assert check_topic_configs(topics, _configs(topics, dlq={"retention.ms": str(400 * DAY_MS)})) == []
    shorter = TopicSettings(dlq_retention_ms=30 * DAY_MS)
    assert check_topic_configs(shorter, _configs(topics, dlq={"retention.ms": str(30 * DAY_MS)})) == []
    forever = TopicSettings(dlq_retention_ms=-1)
    refused = check_topic_configs(forever, _configs(topics, dlq={"retention.ms": str(400 * DAY_MS)}))
    assert [f.refuse for f in refused] == [True]


def test_short_receipts_retention_and_low_min_insync_replicas_are_warnings() -> None:
    topics = TopicSettings(replication_factor=3)
    configs = _configs(topics, receipts={"retention.ms": str(DAY_MS)}, outbox={"min.insync.replicas": "1"})
    findings = check_topic_configs(topics, configs)
    assert sorted((f.topic, f.refuse) for f in findings) == [(topics.outbox, False), (topics.receipts, False)]


def test_topics_the_broker_did_not_describe_are_not_judged() -> None:
    assert check_topic_configs(TopicSettings(replication_factor=3), {}) == []


# -- limits ---------------------------------------------------------------------------------------------------------

MIB = 1024 * 1024
KAFKA_DEFAULTS = {
    "events_max_message_bytes": KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    "outbox_max_message_bytes": KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    "dlq_max_message_bytes": KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
}


def test_default_limits_fit_and_the_dlq_record_limit_is_the_smaller_limit_minus_the_margin() -> None:
    assert check_limits({"hundesteuer": 256 * 1024}, MIB, **KAFKA_DEFAULTS) == MIB - DLQ_MARGIN
    smaller_dlq = KAFKA_DEFAULTS | {"dlq_max_message_bytes": 512 * 1024}
    assert check_limits({"hundesteuer": 256 * 1024}, MIB, **smaller_dlq) == 512 * 1024 - DLQ_MARGIN


def test_a_rerouted_record_is_four_thirds_of_the_payload_plus_the_allowance() -> None:
    assert rerouted_size(3) == 4 + REROUTE_ALLOWANCE
    assert rerouted_size(4) == 8 + REROUTE_ALLOWANCE
    assert rerouted_size(768 * 1024) == MIB + REROUTE_ALLOWANCE


def test_a_payload_whose_rerouted_record_exceeds_max_request_size_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"gewerbe: max_payload_bytes 786432 .* kafka.max_request_size") as raised:
        check_limits({"hundesteuer": 256 * 1024, "gewerbe": 768 * 1024}, MIB, **KAFKA_DEFAULTS)
    assert "hundesteuer" not in raised.value.message


def test_a_payload_whose_rerouted_record_exceeds_the_events_topic_is_refused() -> None:
    small_events = KAFKA_DEFAULTS | {"events_max_message_bytes": 256 * 1024}
    with pytest.raises(ConfigError, match=r"events topic's max\.message\.bytes"):
        check_limits({"hundesteuer": 256 * 1024}, 4 * MIB, **small_events)


def test_a_payload_that_could_not_be_dead_lettered_whole_is_refused() -> None:
    # fits the request size and the events topic, but the DLQ takes less than the payload
    limits = {"events_max_message_bytes": 8 * MIB, "outbox_max_message_bytes": MIB, "dlq_max_message_bytes": MIB}
    check_limits({"hundesteuer": MIB - DLQ_MARGIN - REROUTE_ALLOWANCE}, 8 * MIB, **limits)
    with pytest.raises(ConfigError, match="dead-lettered whole"):
        check_limits({"hundesteuer": 2 * MIB}, 8 * MIB, **limits)


def test_a_dlq_or_outbox_too_small_for_a_stub_or_a_message_is_refused() -> None:
    with pytest.raises(ConfigError, match="DLQ record limit"):
        check_limits({}, MIB, **KAFKA_DEFAULTS | {"dlq_max_message_bytes": MIN_RECORD_BYTES})
    with pytest.raises(ConfigError, match=r"outbox max\.message\.bytes"):
        check_limits({}, MIB, **KAFKA_DEFAULTS | {"outbox_max_message_bytes": MIN_RECORD_BYTES - 1})


# -- the lifecycle Table's changelog -------------------------------------------------------------------------------

CHANGELOG = "rueckkanal-vorgaenge-changelog"


def test_the_changelog_is_created_compacted_with_the_pipeline_s_partition_count() -> None:
    settings = Settings()
    (spec,) = [s for s in pipeline_topics(settings, [], CHANGELOG) if s.name == CHANGELOG]
    assert spec.exact and spec.partitions == settings.topics.partitions
    assert spec.configs["cleanup.policy"] == "compact"
    assert CHANGELOG not in {s.name for s in pipeline_topics(settings, [])}  # no ingest stage, no changelog


@pytest.mark.parametrize(
    ("configs", "problem"),
    [
        ({"cleanup.policy": "delete"}, "does not compact"),
        ({"cleanup.policy": "compact,delete", "retention.ms": "604800000"}, "deletes state after retention.ms"),
        ({"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "1000"}, "retention.bytes"),
    ],
)
def test_a_changelog_that_loses_open_vorgaenge_is_refused(configs: dict[str, str], problem: str) -> None:
    findings = check_topic_configs(TopicSettings(), {CHANGELOG: configs}, CHANGELOG)
    assert [(f.topic, f.refuse) for f in findings] == [(CHANGELOG, True)]
    assert problem in findings[0].problem


def test_a_compacted_changelog_passes_and_short_tombstone_retention_is_a_warning() -> None:
    kept = {"cleanup.policy": "compact", "delete.retention.ms": "86400000", "min.insync.replicas": "1"}
    assert check_topic_configs(TopicSettings(), {CHANGELOG: kept}, CHANGELOG) == []
    short = kept | {"delete.retention.ms": "200"}
    findings = check_topic_configs(TopicSettings(), {CHANGELOG: short}, CHANGELOG)
    assert [(f.topic, f.refuse) for f in findings] == [(CHANGELOG, False)]
    assert "delete.retention.ms" in findings[0].problem
    forever = {"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"}
    assert check_topic_configs(TopicSettings(), {CHANGELOG: forever}, CHANGELOG) == []
