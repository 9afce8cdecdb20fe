from rueckkanal.settings import Settings
from streams.dlq import H_PARTITION, H_STAGE, H_TOPIC
from streams.dlq_tool import DeadLetter, replay_partition, replay_target


def _letter(*headers: tuple[str, bytes]) -> DeadLetter:
    return DeadLetter(partition=0, offset=7, key=b"vorgang-key", value=b"<xml/>", headers=list(headers))


def test_a_delivery_failure_goes_back_to_its_outbox_partition() -> None:
    letter = _letter((H_STAGE, b"delivery"), (H_TOPIC, b"rueckkanal.outbox"), (H_PARTITION, b"5"))
    assert replay_target(letter, Settings()) == Settings().topics.outbox
    assert replay_partition(letter, range(12)) == 5


def test_an_ingest_failure_goes_back_to_its_source_topic_and_partition() -> None:
    letter = _letter((H_STAGE, b"ingest"), (H_TOPIC, b"fv.hundesteuer.status"), (H_PARTITION, b"3"))
    assert replay_target(letter, Settings()) == "fv.hundesteuer.status"
    assert replay_partition(letter, range(6)) == 3


def test_the_key_decides_when_the_original_partition_is_unknown_or_gone() -> None:
    assert replay_partition(_letter((H_STAGE, b"ingest")), range(6)) is None
    assert replay_partition(_letter((H_PARTITION, b"-1")), range(6)) is None
    assert replay_partition(_letter((H_PARTITION, b"9")), range(6)) is None
