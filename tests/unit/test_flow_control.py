"""Resuming the worker's flow control keeps what the agents' queues hold; revocation still empties them."""

from __future__ import annotations

from pathlib import Path

import faust

from rueckkanal.settings import Settings
from streams.app import KeepQueuesOnResume, create_pipeline


def _agent_queue(app: faust.App) -> object:
    # What faust gives every agent channel (faust/channels.py).
    return app.FlowControlQueue(maxsize=10, clear_on_resume=True)


def test_faust_itself_empties_agent_queues_on_resume() -> None:
    app = faust.App("stock", broker="kafka://127.0.0.1:1")
    queue = _agent_queue(app)
    app.flow_control.resume()
    queue.put_nowait("fetched before the recovery seek")  # type: ignore[attr-defined]
    app.flow_control.resume()
    assert queue.empty()  # type: ignore[attr-defined]


def test_the_pipeline_keeps_queued_records_on_resume_and_empties_them_on_clear(tmp_path: Path) -> None:
    app = create_pipeline(Settings(data_dir=tmp_path)).app
    assert isinstance(app.flow_control, KeepQueuesOnResume)
    queue = _agent_queue(app)
    app.flow_control.resume()
    queue.put_nowait("fetched before the recovery seek")  # type: ignore[attr-defined]
    app.flow_control.suspend()
    app.flow_control.resume()
    assert queue.qsize() == 1  # type: ignore[attr-defined]
    assert app.flow_control.is_active()
    app.flow_control.clear()  # what revocation does, before partitions can move
    assert queue.empty()  # type: ignore[attr-defined]
