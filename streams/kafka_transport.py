"""faust's aiokafka transport, with the worker consumer's fetch wait cut from faust's fixed 1.5 s to 100 ms.

faust builds its consumer with ``fetch_max_wait_ms=1500`` and no way to set it. aiokafka keeps one fetch request
in flight per broker, leaving out partitions that still have buffered records; when that request holds only
partitions without new data, the broker parks it for the full wait, and records arriving meanwhile on the other
partitions wait too. At a steady 500 events/s this showed as a median of ~2.8 s from source to portal in four of
nine runs (1.2 s and 1.6 s in the two faust hops, the worker at half its CPU), and ~160 ms in every run with a
100 ms wait (docs/benchmarks.md). An idle consumer now asks the broker ten times a second: nothing for Kafka.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # what AIOKafkaConsumer.start() gives its Fetcher
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
