"""The delivery dispatcher as a service of the faust worker, so one process can run both stages.

faust starts and stops it with the worker: SIGTERM stops fetching, drains within the deadline and commits.
"""

from __future__ import annotations

import mode

from streams.delivery.dispatcher import DeliveryDispatcher


class DeliveryService(mode.Service):
    def __init__(self, dispatcher: DeliveryDispatcher) -> None:
        self.dispatcher = dispatcher
        super().__init__()

    async def on_start(self) -> None:
        await self.dispatcher.start()

    async def on_stop(self) -> None:
        await self.dispatcher.stop()
