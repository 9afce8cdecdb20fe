"""A Kafka broker of one test's own (scripts/kafka.sh on a free port with its own data directory), which the test
may SIGKILL and start again on the same port and data: the shared broker other tests use is never touched."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.kafka import SCRIPT, BrokerUnavailable


def _port_pair_free() -> int:
    """A port p with p+1 free too (the script's controller listens there), below the ephemeral range: a client's
    outgoing connection (or a connection to itself) can never occupy it while the broker is down."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    dice = random.Random()  # choosing a port, not cryptography
    for _ in range(200):
        port = dice.randrange(max(10_000, low - 12_000), low - 2)
        try:
            with socket.socket() as one, socket.socket() as two:
                one.bind(("127.0.0.1", port))
                two.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise BrokerUnavailable("no two adjacent free ports below the ephemeral range")


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
        while _alive(pid) or _listening(self.port) or _listening(self.port + 1):
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker {pid} survived SIGKILL")
            time.sleep(0.05)  # waiting for the kernel to reap the killed process, bounded
        # A killed process may linger as a zombie, which `kill -0` (the script's liveness check) still finds.
        (self.data / "kafka.pid").unlink()
        self.kills += 1

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self._env, capture_output=True, text=True)


def _listening(port: int) -> bool:
    """Whether something still accepts connections there (a killed JVM's threads release its sockets last)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")
