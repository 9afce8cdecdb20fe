"""The Fachverfahren producers of other languages (tests/java, tests/go, tests/js; built by scripts/tools.sh), each
the language's common Kafka client with the official CloudEvents SDK of that language. They read one event per
line and print where each record went."""

from __future__ import annotations

import json
import subprocess

from tests.support.events import ValidEvent


def event_line(event: ValidEvent, **plan: object) -> str:
    """One event as the producers read it: the CloudEvent's attributes and its JSON data; ``plan`` adds what a
    producer may read beside them (the Java producer: ``transaction`` and ``abort``)."""
    _, value, headers = event.record
    have = {name: raw.decode() for name, raw in headers}
    return json.dumps(
        {
            "id": have["ce_id"],
            "source": have["ce_source"],
            "type": have["ce_type"],
            "time": have["ce_time"],
            "vorgangId": event.vorgang_id,
            "data": json.loads(value or b"{}"),
            **plan,
        }
    )


def produce(argv: list[str], lines: list[str]) -> list[tuple[int, int]]:
    """Run a producer on the lines, in order, until it has written all of them; (partition, offset) of each."""
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    written = [(int(partition), int(offset)) for partition, offset in map(str.split, done.stdout.splitlines())]
    assert len(written) == len(lines), done.stderr[-2000:]
    return written
