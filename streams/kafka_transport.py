"""faust's aiokafka transport with a 100 ms consumer fetch wait, and commits that survive the end of a recovery.

**Fetch wait.** faust builds its consumer with ``fetch_max_wait_ms=1500`` and no way to set it. aiokafka keeps one
fetch request in flight per broker, leaving out partitions that still have buffered records; when that request
holds only partitions without new data, the broker parks it for the full wait, and records arriving meanwhile on
the other partitions wait too. At a steady 500 events/s this showed as a median of ~2.8 s from source to portal in
two of three runs (1.2 s and 1.6 s in the two faust hops, the worker at half its CPU), and 150 ms in every run with
a 100 ms wait (docs/benchmarks.md). An idle consumer now asks the broker ten times a second: nothing for Kafka.

**Commits.** faust commits up to the first break in the sorted list of acknowledged offsets of a partition, and
a repeated offset is such a break. Offsets repeat when a record is read twice, as at the end of a Table recovery,
where faust seeks back to the committed offsets while it is still delivering a batch fetched before the seek, and
when faust fills a gap it inferred from that seek with offsets that were processed already. The partition then
never commits again until the next rebalance (faust-streaming #596): lag grows, and a restart reprocesses the
whole backlog. Seen in the ingest crash test after SIGKILL restarts whose recovery overlapped a fetch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # what AIOKafkaConsumer.start() gives its Fetcher
        return consumer


class AckedOffsets(list[int]):
    """A partition's acknowledged offsets; faust sorts them before it looks for the next commit, so sorting is
    where the repeats go."""

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self[:] = sorted(set(self), *args, **kwargs)


class CommittedOffsets(defaultdict[Any, int | None]):
    """The offsets faust believes committed, per partition; within one assignment they only move forward.

    faust reads them back from the broker when it seeks at the end of a recovery. A commit of its own that lands
    while that read is in flight is then overwritten with the older value, and faust, seeing acknowledgements start
    more than one offset above the committed one, never commits that partition again. Seen in 2 of about 20
    crash-test restarts once the two fixes above were in; under instrumentation: faust committed 472 during the
    seek, the seek then set 385, and every later commit of the partition was refused. Revocation removes a
    partition's entry, so a new assignment starts from the broker's value.
    """

    def __init__(self) -> None:
        super().__init__(lambda: None)

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        known = self.get(tp)
        if known is None or (offset is not None and offset > known):
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acked = defaultdict(AckedOffsets)
        self._committed_offset = CommittedOffsets()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
