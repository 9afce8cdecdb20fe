from streams.delivery.offsets import PartitionOffsets


def test_out_of_order_finish_commits_only_the_contiguous_prefix() -> None:
    offsets = PartitionOffsets()
    for offset in range(10, 15):
        offsets.start(offset)
    offsets.finish(12)
    offsets.finish(14)
    assert offsets.committable() is None  # 10 still runs: committing 13 or 15 would skip it after a crash
    offsets.finish(10)
    assert offsets.committable() == 11
    offsets.finish(11)
    assert offsets.committable() == 13  # 13 is still in flight
    offsets.finish(13)
    assert offsets.committable() == 15
    assert offsets.in_flight == 0


def test_mark_committed_clears_until_progress() -> None:
    offsets = PartitionOffsets()
    offsets.start(0)
    offsets.start(1)
    offsets.finish(0)
    offsets.mark_committed(1)
    assert offsets.committable() is None
    assert offsets.oldest_pending == 1
    offsets.finish(1)
    assert offsets.committable() == 2


def test_gaps_in_offsets_from_compaction_or_transactions_do_not_block() -> None:
    offsets = PartitionOffsets()
    for offset in (3, 7, 8):
        offsets.start(offset)
    offsets.finish(7)
    offsets.finish(3)
    assert offsets.committable() == 8
