"""A real Prometheus (Debian's binary, from scripts/tools.sh) on 127.0.0.1 with throwaway storage, for tests."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.ops.tooling import ops_tools
from tests.support.processes import free_port

T = TypeVar("T")


class PrometheusServer:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 4xx/5xx answers carry the error as JSON too
            body = json.load(exc)
        return body

    def names(self) -> set[str]:
        return set(self.api("label/__name__/values").get("data", []))

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets").get("data", {}).get("activeTargets", []))


def poll(check: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str = "condition") -> T:
    """Call check until it returns something truthy; fail after timeout with the last value it returned."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)  # poll interval of a deadline-bounded wait, not a synchronisation sleep
    raise TimeoutError(f"{what} not reached within {timeout}s (last: {last!r})")


@contextmanager
def prometheus(
    tmp_path: Path, targets: dict[str, list[str]], scrape_interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (job name → host:port list); stop it (and only it) afterwards."""
    binary = ops_tools().tool("prometheus")
    port = free_port()
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: {json.dumps(addresses)}"
        for job, addresses in targets.items()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\nscrape_configs:\n{jobs}\n",
        encoding="utf-8",
    )
    log = tmp_path / "prometheus.log"
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        server = PrometheusServer(f"http://127.0.0.1:{port}", log)
        try:

            def answers() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"prometheus exited with {proc.returncode}: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:  # noqa: S310
                        return bool(response.status == 200)
                except OSError:
                    return False

            poll(answers, timeout=60, what="prometheus ready")
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
