from rueckkanal.settings import Settings, TopicSettings
from streams.topics import pipeline_topics


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
