"""The real broker for integration tests: the one named by RK_KAFKA__BOOTSTRAP, or one started by the script."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kafka.sh"
TEST_PORT = int(os.environ.get("RK_TEST_KAFKA_PORT", "19192"))


class BrokerUnavailable(RuntimeError):
    pass


def reachable(bootstrap: str, timeout: float = 3.0) -> bool:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def broker() -> Iterator[str]:
    """Yield a bootstrap address; start (and afterwards stop) a throwaway broker if none was given."""
    given = os.environ.get("RK_KAFKA__BOOTSTRAP")
    if given:
        if not reachable(given):
            raise BrokerUnavailable(f"RK_KAFKA__BOOTSTRAP={given} is set but nothing answers there")
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="rk-kafka-test-") as data:
        env = {**os.environ, "RK_KAFKA_PORT": str(TEST_PORT), "RK_KAFKA_DATA": data}
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True)
        if started.returncode != 0:
            raise BrokerUnavailable(
                "could not start the local Kafka broker with scripts/kafka.sh "
                f"(needs Java 17+, and Maven for the first fetch):\n{started.stderr[-3000:]}"
            )
        try:
            yield f"127.0.0.1:{TEST_PORT}"
        finally:
            subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True)
