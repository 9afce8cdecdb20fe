"""A Kafka broker of one test's own (scripts/kafka.sh on a free port with its own data directory), which the test
may SIGKILL and start again on the same port and data: the shared broker other tests use is never touched."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.kafka import SCRIPT, BrokerUnavailable


def _port_pair_free() -> int:
    """A port p with p+1 free too (the script's controller listens there)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port >= 65535:
            continue
        try:
            with socket.socket() as other:
                other.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise BrokerUnavailable("no two adjacent free ports")


class OwnBroker:
    def __init__(self, data: Path) -> None:
        self.port = _port_pair_free()
        self.data = data
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.kills = 0
        env = {k: v for k, v in os.environ.items() if k != "RK_KAFKA__BOOTSTRAP"}
        self._env = env | {"RK_KAFKA_PORT": str(self.port), "RK_KAFKA_DATA": str(data)}

    def start(self) -> None:
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=self._env, capture_output=True, text=True)
        if started.returncode != 0:
            raise BrokerUnavailable(f"own broker did not start on {self.port}:\n{started.stderr[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the broker process, as a node dying would, and wait until it is gone."""
        pid = int((self.data / "kafka.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker {pid} survived SIGKILL")
            time.sleep(0.05)  # waiting for the kernel to reap the killed process, bounded
        # A killed process may linger as a zombie, which `kill -0` (the script's liveness check) still finds.
        (self.data / "kafka.pid").unlink()
        self.kills += 1

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self._env, capture_output=True, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")
