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
STATUS_TIME = "2024-03-04T08:00:00+01:00"
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


@dataclass(frozen=True)
class _Drawn:
    """What Hypothesis decides for one record; the Vorgang id is filled in afterwards (the draw must not depend on
    how many records came before it, or Hypothesis could not replay it)."""

    kind: str
    headers: list[tuple[str | bytes, bytes]]
    ce_position: int
    value: bytes  # garbage and big: the value itself; valid: unused


@st.composite
def _drawn(draw: st.DrawFn, kind: str, decoys: list[str]) -> _Drawn:
    max_headers = 2 if kind == "big" else 6
    pairs = draw(st.lists(st.tuples(_header_names(), _header_values(decoys)), max_size=max_headers))
    headers = [(name, value[:2000] if kind == "big" else value) for name, value in pairs]
    position = draw(st.integers(0, len(headers)))
    value = b""
    if kind == "garbage":
        value = draw(st.binary(max_size=3000))
    elif kind == "big":
        top = BROKER_LIMIT - 12_000  # headroom for key, headers and batch framing
        size = draw(st.one_of(st.just(top), st.integers(BIG_MIN, top), st.integers(top - 50_000, top)))
        filler = draw(st.sampled_from([b"{", b"\xff", b"A", b'{"vorgangId": "']))
        value = (filler * (size // len(filler) + 1))[:size]
    return _Drawn(kind, headers, position, value)


def _case(drawn: _Drawn, run: str, index: int) -> FuzzCase:
    vorgang_id = f"FZ-{run}-{index:04d}"
    headers = list(drawn.headers)
    if drawn.kind != "valid":
        return FuzzCase(drawn.kind, vorgang_id, None, (vorgang_id.encode(), drawn.value, headers))
    event_id = f"{vorgang_id}-e001"
    data = {"vorgangId": vorgang_id, "leistung": "99108001000000", "status": "100", "statusZeit": STATUS_TIME}
    ce: list[tuple[str | bytes, bytes]] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", TYPE.encode()),
        ("content-type", b"application/json"),
    ]
    headers[drawn.ce_position : drawn.ce_position] = ce
    return FuzzCase("valid", vorgang_id, event_id, (vorgang_id.encode(), json.dumps(data).encode(), headers))


def draw_cases(run_seed: int, run: str, decoys: list[str], count: int) -> list[FuzzCase]:
    """``count`` cases, drawn by Hypothesis from ``run_seed``: the same seed gives the same records.

    Each Hypothesis example is one block with a record of every kind (KINDS); blocks are drawn until ``count``.
    """
    blocks: list[tuple[_Drawn, ...]] = []
    block = st.tuples(*(_drawn(kind, decoys) for kind in KINDS))

    @seed(run_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(block)
    def collect(drawn: tuple[_Drawn, ...]) -> None:
        blocks.append(drawn)

    collect()
    flat = [d for b in blocks for d in b][:count]
    assert len(flat) == count, f"hypothesis drew {len(flat)} of {count} cases"
    return [_case(d, run, i) for i, d in enumerate(flat)]
