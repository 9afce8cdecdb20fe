"""Shared parts of the pipeline benchmarks (bench/ingest.py, bench/delivery.py).

Child processes watched through their log lines, progress measured by asking the broker (end offsets) or the
portal (``/admin/stats``), never by sleeping for a guessed time; a description of the machine and its load, so a
figure is never reported without its context; and a cProfile hook for a worker child:

    .venv/bin/python bench/common.py --cprofile /tmp/ingest.prof -- worker --role ingest

runs ``rueckkanal worker --role ingest`` under cProfile and writes the stats when the worker exits (SIGTERM).
``--pyinstrument /tmp/ingest.txt`` does the same with the sampling profiler pyinstrument (much less overhead
than cProfile), which is not a project dependency: install it ad hoc outside the venv and put it on PYTHONPATH,
e.g. ``pip install --target /tmp/pyinst pyinstrument; PYTHONPATH=/tmp/pyinst``.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

LogLine = dict[str, Any]
POLL_S = 0.1
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


def bootstrap_address() -> str:
    return os.environ.get("RK_KAFKA__BOOTSTRAP", DEFAULT_BOOTSTRAP)


def unique(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%H%M%S')}-{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the machine ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def busy_processes(min_cpu: float = 5.0) -> list[str]:
    """Other processes using CPU right now (ps %CPU is averaged over their lifetime: a rough picture only)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid=,pcpu=,comm=", "--sort=-pcpu"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out.splitlines():
        pid, cpu, comm = line.split(None, 2)
        if int(pid) != os.getpid() and float(cpu) >= min_cpu:
            busy.append(f"{comm.strip()}({float(cpu):.0f}%)")
    return busy


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def machine_description() -> str:
    import aiokafka
    import faust

    return (
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} cores ({cpu_model()}, "
        f"{platform.machine()}); Python {platform.python_version()}, faust-streaming {faust.__version__}, "
        f"aiokafka {aiokafka.__version__}, aiohttp {aiohttp.__version__}; load average (1/5/15 min) "
        f"{load_average()}"
    )


# -- child processes -----------------------------------------------------------------------------------------


class Child:
    """A child process whose stderr goes to a file; log lines are read from it only when asked for.

    A file rather than a pipe: the workers log one line per message at INFO, and parsing them here would take CPU
    from the very processes being measured on a small machine.
    """

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], name: str, *, cwd: Path = ROOT, log_dir: Path | None = None
    ) -> None:
        self.name = name
        directory = log_dir or Path(tempfile.gettempdir())
        self.log_path = directory / f"{unique(name.replace(' ', '-'))}.log"
        self._log = self.log_path.open("w", encoding="utf-8")
        self._read_pos = 0
        self._partial = ""
        self.proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )

    def _new_lines(self) -> list[LogLine]:
        with self.log_path.open(encoding="utf-8", errors="replace") as f:
            f.seek(self._read_pos)
            text = self._partial + f.read()
            self._read_pos = f.tell()
        *complete, self._partial = text.split("\n")
        return [_parse(raw) for raw in complete if raw.strip()]

    def wait_for(self, predicate: Callable[[LogLine], bool], timeout: float) -> LogLine:
        deadline = time.monotonic() + timeout
        while True:
            for line in self._new_lines():
                if predicate(line):
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); tail: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no matching log line within {timeout}s; tail: {self.tail()}")
            time.sleep(0.05)  # polling the child's log file, bounded by the deadline

    def wait_for_event(self, event: str, timeout: float = 120.0) -> LogLine:
        return self.wait_for(lambda line: line.get("event") == event, timeout)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); tail: {self.tail()}")

    def tail(self, n: int = 12) -> list[str]:
        with self.log_path.open(encoding="utf-8", errors="replace") as f:
            f.seek(max(0, self.log_path.stat().st_size - 20_000))
            lines = f.read().splitlines()[-n:]
        return [str(_parse(raw).get("event", raw))[:300] for raw in lines]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads), from /proc; 0 where there is none."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def count_lines(self, needle: str) -> int:
        """Log lines containing ``needle`` so far (e.g. the per-message outcome lines)."""
        with self.log_path.open(encoding="utf-8", errors="replace") as f:
            return sum(1 for raw in f if needle in raw)

    def stop(self, timeout: float = 45.0) -> int:
        """SIGTERM, wait, then SIGKILL if it does not go; the exit code (negative: killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=30)
        self._log.close()
        return code


def _parse(raw: str) -> LogLine:
    try:
        line = json.loads(raw)
    except json.JSONDecodeError:
        return {"event": raw.rstrip(), "unparsed": True}
    return line if isinstance(line, dict) else {"event": str(line), "unparsed": True}


def cli_child(
    args: Sequence[str],
    env: Mapping[str, str],
    name: str,
    *,
    profile: tuple[str, Path] | None = None,
    root: Path | None = None,
) -> Child:
    """``rueckkanal <args>`` as a child process, optionally under a profiler: ``("cprofile" | "pyinstrument", out)``
    (see this module's ``__main__``). ``root``: run the code of another checkout (a scratch copy with a change to
    try; ``python -m`` puts the working directory first on sys.path)."""
    if profile is not None:
        kind, out = profile
        argv = [sys.executable, str(Path(__file__).resolve()), f"--{kind}", str(out), "--", *args]
    else:
        argv = [sys.executable, "-m", "streams", *args]
    return Child(argv, env, name, cwd=root or ROOT)


def worker_env(bootstrap: str, app_id: str, data_dir: Path, partitions: int, log_level: str = "INFO") -> dict[str, str]:
    """Settings every benchmark worker gets: its own app id (group, changelog), a free web port, local data."""
    return {
        "RK_KAFKA__BOOTSTRAP": bootstrap,
        "RK_APP_ID": app_id,
        "RK_TOPICS__PARTITIONS": str(partitions),
        "RK_DATA_DIR": str(data_dir),
        "RK_WEB__HOST": "127.0.0.1",
        "RK_WEB__PORT": str(free_port()),
        "RK_LOG__LEVEL": log_level,
    }


# -- progress --------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Samples of a growing count; the rate is taken from the first sample that saw any progress to the last one.

    Starting at the first observed record leaves out process start, group join and table recovery, and measures
    the steady throughput of the stage.
    """

    target: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # child name → CPU seconds at each sample

    def add(self, count: int, children: Sequence[Child] = ()) -> None:
        self.samples.append((time.monotonic(), count))
        for child in children:
            self.cpu.setdefault(child.name, []).append(child.cpu_seconds())

    def cpu_share(self, name: str) -> float:
        """CPU time of that child over the measured span, per second of wall time (1.0 = one core busy)."""
        values = self.cpu.get(name)
        index = next((i for i, (_, c) in enumerate(self.samples) if c > 0), None)
        if not values or index is None or self.seconds <= 0:
            return 0.0
        return (values[-1] - values[index]) / self.seconds

    def cpu_note(self) -> str:
        return ", ".join(f"{name} {self.cpu_share(name):.0%}" for name in self.cpu)

    @property
    def count(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    @property
    def done(self) -> bool:
        return self.count >= self.target

    def _first_progress(self) -> tuple[float, int] | None:
        return next(((t, c) for t, c in self.samples if c > 0), None)

    @property
    def seconds(self) -> float:
        first = self._first_progress()
        return self.samples[-1][0] - first[0] if first else 0.0

    @property
    def rate(self) -> float:
        first = self._first_progress()
        if first is None or not self.samples:
            return 0.0
        t_last, c_last = self.samples[-1]
        return (c_last - first[1]) / (t_last - first[0]) if t_last > first[0] else 0.0


async def follow(
    counter: Callable[[], Any],
    progress: Progress,
    limit_s: float,
    children: Sequence[Child] = (),
    startup_s: float = 120.0,
) -> Progress:
    """Poll ``counter`` (an async count) until the target is reached, or ``limit_s`` seconds after the first
    progress (``startup_s`` for that first progress: process start, group join, recovery). The children's CPU
    time is sampled with every count, and each must stay alive."""
    deadline = time.monotonic() + startup_s
    started = False
    while True:
        progress.add(int(await counter()), children)
        if not started and progress.count > 0:
            started, deadline = True, time.monotonic() + limit_s
        if progress.done or time.monotonic() >= deadline:
            return progress
        for child in children:
            child.check_alive()
        await asyncio.sleep(POLL_S)  # polling the broker's or the portal's answer, bounded by the deadline


class TopicCounter:
    """Records on a topic right now (sum of end offsets), with one long-lived consumer."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.topic = topic
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> TopicCounter:
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def __call__(self) -> int:
        ends = await self._consumer.end_offsets(self._tps)
        return int(sum(ends.values()))


# -- the reference portal --------------------------------------------------------------------------------------


class PortalSim:
    """A ``rueckkanal portal-sim`` child with a fresh SQLite file, and a small client for its admin endpoints."""

    def __init__(self, db: Path, latency_ms: int = 0, profile: tuple[str, Path] | None = None) -> None:
        # INFO: the ready line is logged at INFO; nothing is logged per message at that level.
        args = ["portal-sim", "--port", "0", "--db", str(db), "--log-level", "INFO"]
        if latency_ms:
            args += ["--latency-min-ms", str(latency_ms), "--latency-max-ms", str(latency_ms)]
        self.child = cli_child(args, {}, "portal-sim", profile=profile)
        ready = self.child.wait_for_event("portal-sim ready", timeout=60)
        self.base_url = f"http://127.0.0.1:{ready['port']}"
        self.nachrichten_url = str(ready["url"])
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def stats(self) -> dict[str, int]:
        async with self.session().get(f"{self.base_url}/admin/stats") as response:
            data: dict[str, int] = await response.json()
            return data

    async def stored(self) -> int:
        return int((await self.stats()).get("stored", 0))

    async def nachrichten(self, vorgang_id: str) -> list[dict[str, Any]]:
        async with self.session().get(f"{self.base_url}/nachrichten", params={"vorgang": vorgang_id}) as response:
            data = await response.json()
            rows: list[dict[str, Any]] = data["nachrichten"]
            return rows

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.child.stop()


# -- figures ---------------------------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1) of unsorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def per_s(value: float) -> str:
    return f"{value:,.0f}"


# -- the cProfile hook -----------------------------------------------------------------------------------------


def _profiled_cli(out: Path, args: list[str]) -> None:
    """Run ``rueckkanal <args>`` in this process under cProfile; write the stats however the worker ends."""
    from streams.cli import main as rueckkanal_main

    sys.argv = ["rueckkanal", *args]
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        rueckkanal_main()
    finally:
        profiler.disable()
        profiler.dump_stats(str(out))


def _sampled_cli(out: Path, args: list[str]) -> None:
    """Run ``rueckkanal <args>`` under pyinstrument (1 ms samples); write a call tree and a flat list by own time."""
    from pyinstrument import Profiler  # type: ignore[import-not-found,unused-ignore]  # ad hoc, not a dependency
    from pyinstrument.renderers import ConsoleRenderer  # type: ignore[import-not-found,unused-ignore]

    from streams.cli import main as rueckkanal_main

    sys.argv = ["rueckkanal", *args]
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        rueckkanal_main()
    finally:
        session = profiler.stop()
        tree = ConsoleRenderer(unicode=False, color=False, show_all=False, short_mode=False).render(session)
        flat = ConsoleRenderer(unicode=False, color=False, flat=True).render(session)
        out.write_text(tree + "\n\n==== flat, by own time ====\n" + flat)
        session.save(str(out.with_suffix(".pyisession")))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--cprofile" and sys.argv[3] == "--":
        _profiled_cli(Path(sys.argv[2]), sys.argv[4:])
    elif len(sys.argv) > 3 and sys.argv[1] == "--pyinstrument" and sys.argv[3] == "--":
        _sampled_cli(Path(sys.argv[2]), sys.argv[4:])
    else:
        sys.exit(__doc__)
