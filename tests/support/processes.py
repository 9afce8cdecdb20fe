"""Child processes of the real CLI, watched through their JSON log lines instead of sleeps."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

LogLine = dict[str, Any]


class CliProcess:
    """``rueckkanal <args>`` in a child process, its stderr parsed line by line on a reader thread."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        log_file: Path | None = None,
        *,
        program: Sequence[str] = (sys.executable, "-m", "streams"),
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        """``program`` is the command (an installed ``rueckkanal`` script, say); ``env`` is laid over ``base_env``
        (default: this process's environment)."""
        self.lines: list[LogLine] = []
        self.log_file = log_file  # every raw line is kept there too, for a post-mortem of a failed test
        self._queue: queue.Queue[LogLine | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*program, *args],
            env={**(os.environ if base_env is None else base_env), **env},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        sink = self.log_file.open("a", encoding="utf-8") if self.log_file else None
        for raw in self.proc.stderr:
            if sink:
                sink.write(raw)
                sink.flush()
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                line = {"event": raw.rstrip(), "unparsed": True}
            self._queue.put(line)
        if sink:
            sink.close()
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[LogLine], bool], timeout: float = 60.0) -> LogLine:
        """Block until a log line matches; fail with the log tail if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching log line within {timeout}s; tail: {self.lines[-15:]}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited ({self.proc.wait()}); tail: {self.lines[-15:]}")
            self.lines.append(line)
            if predicate(line):
                return line

    def wait_for_event(self, event: str, timeout: float = 60.0) -> LogLine:
        return self.wait_for(lambda line: line.get("event") == event, timeout)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; the exit code tells whether the shutdown was clean."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def free_port() -> int:
    """A port nobody listens on right now, for a child server that needs a fixed one."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Supervised:
    """A worker kept running as an orchestrator would: whenever it exits, a new one is started (after a pause).

    ``exits`` records each exit code; ``current`` is the process running now. Call :meth:`check` often (it is
    cheap): it restarts a worker that has exited. The exit codes say why, e.g. 75 (EX_TEMPFAIL) = Kafka unreachable.
    """

    def __init__(self, args: list[str], env: Mapping[str, str], log_file: Path | None = None) -> None:
        self.args, self.env, self.log_file = args, dict(env), log_file
        self.exits: list[int] = []
        self.current = CliProcess(args, env, log_file=log_file)
        self._restart_at: float | None = None

    def check(self) -> None:
        code = self.current.proc.poll()
        if code is None:
            return
        now = time.monotonic()
        if self._restart_at is None:
            self.exits.append(code)
            self.current.terminate()
            self._restart_at = now + 1.0  # an orchestrator's back-off before the next start
        if now >= self._restart_at:
            self._restart_at = None
            self.current = CliProcess(self.args, self.env, log_file=self.log_file)

    def terminate(self) -> int:
        """SIGTERM the current worker; SIGKILL it if it has not stopped within a minute (never leave it behind)."""
        try:
            return self.current.terminate()
        except subprocess.TimeoutExpired:
            self.current.kill()
            raise
