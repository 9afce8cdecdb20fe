"""What the chaos tier counts and asks: the run's report file, the worker's metrics, records arriving on a topic."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.kafka_io import end_offsets

ROOT = Path(__file__).resolve().parents[2]
REPORT_FILE = ROOT / "var" / "chaos" / "last-run.json"
COUNTS = ("records_tried", "faults_injected", "lost", "misordered", "worker_exits")


@dataclass
class ChaosReport:
    """Per test: records tried, faults injected, lost, misordered, worker exits; and the totals over the run."""

    seed: int
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, test: str, **counts: Any) -> None:
        missing = [name for name in COUNTS if name not in counts]
        assert not missing, f"chaos report of {test} lacks {missing}"
        self.tests[test] = counts
        self.write()

    def write(self) -> None:
        totals = {name: sum(int(t[name]) for t in self.tests.values()) for name in COUNTS}
        REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
        body = {"seed": self.seed, "started_at": self.started_at, "totals": totals, "tests": self.tests}
        REPORT_FILE.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def metric_value(web_port: int, name: str, **labels: str) -> float | None:
    """One sample of the worker's /metrics, or None if it has no such sample."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        have = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == name and have == wanted:
            return float(value)
    return None


async def wait_for_records(bootstrap: str, topic: str, at_least: int, within_s: float = 180.0) -> int:
    """Poll the topic's end offsets (a broker answer, with a deadline) until it holds ``at_least`` records."""
    deadline = time.monotonic() + within_s
    while True:
        count = sum((await end_offsets(bootstrap, [topic])).values())
        if count >= at_least:
            return count
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} holds {count} records after {within_s}s, {at_least} awaited")
        await asyncio.sleep(0.2)  # polling the broker's end offsets, bounded
