from __future__ import annotations

from streams.obs import Progress
from tests.support.clock import ManualClock


def test_a_stage_with_waiting_work_and_no_step_forward_is_stalled() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=60, clock=clock)
    work = {"waiting": True}
    progress.watch("delivery", lambda: work["waiting"])
    assert progress.problem() is None
    clock.now += 59
    assert progress.problem() is None
    clock.now += 2
    problem = progress.problem()
    assert problem is not None and "delivery" in problem
    progress.advanced("delivery")
    assert progress.problem() is None


def test_idle_time_does_not_count_towards_a_stall() -> None:
    clock = ManualClock()
    progress = Progress(stall_after_s=60, clock=clock)
    work = {"waiting": False}
    progress.watch("ingest", lambda: work["waiting"])
    clock.now += 3600  # idle for an hour: no work, no stall
    assert progress.problem() is None
    work["waiting"] = True
    assert progress.problem() is None  # work just arrived
    clock.now += 61
    assert progress.problem() is not None


def test_a_broken_check_does_not_fail_the_probe() -> None:
    progress = Progress(stall_after_s=0)

    def broken() -> bool:
        raise RuntimeError("boom")

    progress.watch("ingest", broken)
    assert progress.problem() is None
