"""Hypothesis-drawn source records for the fuzz tests, drawn once up front from the run's seed.

Each case is one Kafka record for the Hundesteuer topic: a valid event (its own Vorgang, status 100), random
bytes, or a value between 900 KB and what the broker takes; with headers named like the pipeline's own
(``rk.*``), CR/LF and non-UTF-8 values, keys that are not UTF-8, and oversized values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.support.events import SOURCE, TYPE
from tests.support.foreign import RawRecord

BROKER_LIMIT = 1_048_588  # the broker's default message.max.bytes: the whole record batch
BIG_MIN = 900_000
OWN_HEADERS = (
    "rk.original.topic",
    "rk.original.partition",
    "rk.original.offset",
    "rk.original.timestamp",
    "rk.source",
    "rk.error.stage",
    "rk.error.reason",
    "rk.attempts",
    "rk.replay.count",
    "rk.sequence",
    "nachrichtenUUID",
    "traceparent",
)


KINDS = ("valid", "garbage", "valid", "big", "valid")


@dataclass(frozen=True)
class FuzzCase:
    kind: str  # valid, garbage, big
    vorgang_id: str
    event_id: str | None
    record: RawRecord


def _header_values(decoys: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from([d.encode() for d in decoys]),
        st.sampled_from([b"x", b"-1", b"99999999999999999999", b"0", b"", b"1e3", b"\xff\xfe"]),
        st.binary(max_size=64),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.builds(lambda a, b: a + b"\r\n" + b, st.binary(max_size=20), st.binary(max_size=20)),
        st.integers(10_000, 110_000).map(lambda n: b"00-" + b"a" * n),  # oversized (a 100 KB traceparent)
    )


def _header_names() -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        st.sampled_from(OWN_HEADERS),
        st.sampled_from(OWN_HEADERS).map(str.upper),
        st.binary(min_size=1, max_size=12).filter(lambda b: _not_utf8(b)),  # a key no UTF-8 decoder reads
        st.text(min_size=1, max_size=20).filter(lambda t: not t.startswith("ce_") and t.lower() != "content-type"),
    )


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@st.composite
def fuzz_case(draw: st.DrawFn, run: str, index: int, decoys: list[str]) -> FuzzCase:
    kind = KINDS[index % len(KINDS)]
    vorgang_id = f"FZ-{run}-{index:04d}"
    headers: list[tuple[str | bytes, bytes]] = []
    max_headers = 2 if kind == "big" else 6
    for name, value in draw(st.lists(st.tuples(_header_names(), _header_values(decoys)), max_size=max_headers)):
        headers.append((name, value[:2000] if kind == "big" else value))
    event_id = None
    if kind == "valid":
        event_id = f"{vorgang_id}-e001"
        data = {
            "vorgangId": vorgang_id,
            "leistung": "99108001000000",
            "status": "100",
            "statusZeit": "2024-03-04T08:00:00+01:00",
        }
        ce = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", SOURCE.encode()),
            ("ce_type", TYPE.encode()),
            ("content-type", b"application/json"),
        ]
        position = draw(st.integers(0, len(headers)))
        headers[position:position] = ce
        value = json.dumps(data).encode()
    elif kind == "garbage":
        value = draw(st.binary(max_size=3000))
    else:
        size = draw(st.integers(BIG_MIN, BROKER_LIMIT - 12_000))  # headroom for key, headers and batch framing
        filler = draw(st.sampled_from([b"{", b"\xff", b"A", b'{"vorgangId": "']))
        value = (filler * (size // len(filler) + 1))[:size]
    return FuzzCase(kind, vorgang_id, event_id, (vorgang_id.encode(), value, headers))


def draw_cases(run_seed: int, run: str, decoys: list[str], count: int) -> list[FuzzCase]:
    """``count`` cases, drawn by Hypothesis from ``run_seed``: the same seed gives the same records."""
    drawn: list[FuzzCase] = []

    @seed(run_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        if len(drawn) < count:
            drawn.append(data.draw(fuzz_case(run, len(drawn), decoys)))

    collect()
    assert len(drawn) == count, f"hypothesis drew {len(drawn)} of {count} cases"
    return drawn
