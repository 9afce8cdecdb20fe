"""``rueckkanal dlq list|show|replay``: what operators do with dead letters once the cause is fixed.

Records are named by ``PARTITION:OFFSET`` in the DLQ topic, which never changes, unlike a position in a list.
``show`` masks personal data: it prints the ``rk.*`` headers in full and the body with every value that could
identify a person replaced, keeping only codes, times and structure. A replay puts the original record back where
it was first read (the Fachverfahren topic, or the outbox for delivery failures) with its key, value and headers
unchanged, minus the old failure headers, plus ``rk.replay.*`` headers that say it is a replay.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from rueckkanal.settings import Settings
from streams.app import kafka_client_options
from streams.cliutil import load_settings
from streams.dlq import (
    H_CLASS,
    H_FAILED_AT,
    H_MESSAGE,
    H_PARTITION,
    H_PORTAL_CODE,
    H_REASON,
    H_SOURCE,
    H_STAGE,
    H_TOPIC,
    Headers,
    without_rk_error_headers,
)

H_REPLAY_COUNT = "rk.replay.count"
H_REPLAY_AT = "rk.replay.at"
H_REPLAY_FROM = "rk.replay.from"

# Keys whose values are codes, times or protocol fields, never personal data.
_SAFE_KEYS = frozenset(
    {
        "status", "statusZeit", "leistung", "specversion", "type", "datacontenttype", "time", "entscheidung",
        "waehrung", "faelligkeit", "frist", "code", "listURI", "listVersionID", "sequenznummer", "zeitpunkt",
        "erstellungszeitpunkt", "nachrichtentyp", "nachrichtenUUID",
    }
)  # fmt: skip


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def failed_at(self) -> datetime | None:
        text = self.header(H_FAILED_AT)
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Filters:
    reason: str | None = None
    source: str | None = None
    since: datetime | None = None
    ids: frozenset[str] = frozenset()

    def match(self, letter: DeadLetter) -> bool:
        if self.ids and letter.id not in self.ids:
            return False
        if self.reason and letter.header(H_REASON) != self.reason:
            return False
        if self.source and letter.header(H_SOURCE) != self.source:
            return False
        failed_at = letter.failed_at
        return not (self.since and (failed_at is None or failed_at < self.since))


async def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record of the DLQ topic up to its current end, without joining a consumer group."""
    options = kafka_client_options(settings.kafka)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topics.dlq])
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        if not ends:
            return []
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        return [_letter(r) for r in await _read_to(consumer, ends)]
    finally:
        await consumer.stop()


async def _read_to(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> list[ConsumerRecord[bytes, bytes]]:
    records: list[ConsumerRecord[bytes, bytes]] = []
    remaining = dict(ends)
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=10_000)
        if not batch:
            raise TimeoutError(f"the DLQ stopped answering with {len(remaining)} partitions unread")
        for tp, part in batch.items():
            records.extend(r for r in part if r.offset < ends[tp])
            if part[-1].offset + 1 >= ends[tp]:
                remaining.pop(tp, None)
                consumer.pause(tp)
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(record.partition, record.offset, record.key, record.value, list(record.headers or ()))


def replay_target(letter: DeadLetter, settings: Settings) -> str:
    """Delivery failures go back to the outbox; ingest failures to the Fachverfahren topic they came from."""
    if letter.header(H_STAGE) == "delivery":
        return settings.topics.outbox
    return letter.header(H_TOPIC) or settings.topics.outbox


def replay_partition(letter: DeadLetter, partitions: Iterable[int]) -> int | None:
    """The partition the record was first read from, if the topic still has it.

    A Vorgang's records are ordered within one partition, and the key alone does not name it: a Fachverfahren may
    use another partitioner, and the outbox partition is the Vorgang id's (streams/partitioner.py), not the key's.
    Without the header, or after the topic lost that partition, the producer's key partitioner decides.
    """
    original = letter.header(H_PARTITION)
    if original is None or not original.isdigit():
        return None
    return int(original) if int(original) in set(partitions) else None


def replay_headers(letter: DeadLetter, now: datetime) -> Headers:
    previous = int(letter.header(H_REPLAY_COUNT) or 0)
    kept = [(k, v) for k, v in without_rk_error_headers(letter.headers) if not k.startswith("rk.replay.")]
    return [
        *kept,
        (H_REPLAY_COUNT, str(previous + 1).encode()),
        (H_REPLAY_AT, now.isoformat(timespec="milliseconds").encode()),
        (H_REPLAY_FROM, letter.id.encode()),
    ]


async def replay(settings: Settings, letters: Iterable[DeadLetter], rate: float | None) -> int:
    producer = AIOKafkaProducer(**kafka_client_options(settings.kafka), acks="all", enable_idempotence=True)
    await producer.start()
    count = 0
    try:
        for letter in letters:
            target = replay_target(letter, settings)
            headers = replay_headers(letter, datetime.now(UTC))
            partition = replay_partition(letter, await producer.partitions_for(target))
            await producer.send_and_wait(target, letter.value, key=letter.key, headers=headers, partition=partition)
            count += 1
            if rate:
                await asyncio.sleep(1 / rate)  # pacing, so a large replay does not flood the portal
    finally:
        await producer.stop()
    return count


# -- masking -------------------------------------------------------------------------------------------------


def masked_body(value: bytes | None) -> str:
    """The body for a person to read, with every value that might be personal data replaced by its shape."""
    if not value:
        return "(empty)"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(value)} bytes, not UTF-8)"
    try:
        return json.dumps(_mask_json(json.loads(text)), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        pass
    if text.lstrip().startswith("<"):
        return _mask_xml_text(text)
    return f"({len(value)} bytes of text, not JSON or XML)"


def _mask_json(data: Any, key: str | None = None) -> Any:
    if isinstance(data, dict):
        return {k: _mask_json(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_json(v, key) for v in data]
    if key in _SAFE_KEYS or isinstance(data, bool) or data is None:
        return data
    return _mask_scalar(str(data))


def _mask_scalar(text: str) -> str:
    return f"*** ({len(text)} chars)"


_XML_TEXT = re.compile(r"<(?P<tag>[\w.:\-]+)(?P<attrs>[^<>]*)>(?P<text>[^<>]+)</(?P=tag)>")


def _mask_xml_text(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        local = match["tag"].rsplit(":", 1)[-1]
        inner = match["text"] if local in _SAFE_KEYS else _mask_scalar(match["text"])
        return f"<{match['tag']}{match['attrs']}>{inner}</{match['tag']}>"

    return _XML_TEXT.sub(repl, text)


# -- the commands --------------------------------------------------------------------------------------------

dlq_cli = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)

ReasonOpt = Annotated[str | None, typer.Option(help="only this rk.error.reason, e.g. schema_invalid")]
SourceOpt = Annotated[str | None, typer.Option(help="only this Fachverfahren, e.g. hundesteuer")]
SinceOpt = Annotated[
    datetime | None, typer.Option(help="only records that failed at or after this time (UTC if no zone)")
]
IdOpt = Annotated[list[str] | None, typer.Option("--id", help="only this record, PARTITION:OFFSET; repeatable")]


def _filters(reason: str | None, source: str | None, since: datetime | None, ids: list[str] | None) -> Filters:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return Filters(reason=reason, source=source, since=since, ids=frozenset(ids or ()))


def _selected(settings: Settings, filters: Filters) -> Iterator[DeadLetter]:
    return (letter for letter in asyncio.run(read_dead_letters(settings)) if filters.match(letter))


@dlq_cli.command("list")
def list_command(reason: ReasonOpt = None, source: SourceOpt = None, since: SinceOpt = None, ids: IdOpt = None) -> None:
    """One line per dead letter: id, time, stage, reason, source, original topic."""
    settings = load_settings()
    typer.echo(f"{'ID':<10} {'FAILED AT (UTC)':<24} {'STAGE':<10} {'REASON':<24} {'SOURCE':<20} ORIGINAL TOPIC")
    for letter in _selected(settings, _filters(reason, source, since, ids)):
        typer.echo(
            f"{letter.id:<10} {letter.header(H_FAILED_AT) or '-':<24} {letter.header(H_STAGE) or '-':<10} "
            f"{letter.header(H_REASON) or '-':<24} {letter.header(H_SOURCE) or '-':<20} {letter.header(H_TOPIC) or '-'}"
        )


@dlq_cli.command("show")
def show_command(record_id: Annotated[str, typer.Argument(metavar="PARTITION:OFFSET")]) -> None:
    """Headers and the body of one dead letter, personal data masked."""
    settings = load_settings()
    found = list(_selected(settings, Filters(ids=frozenset({record_id}))))
    if not found:
        typer.echo(f"no dead letter {record_id} in {settings.topics.dlq}", err=True)
        raise typer.Exit(1)
    letter = found[0]
    typer.echo(f"dead letter {letter.id} in {settings.topics.dlq}")
    for name in (H_STAGE, H_REASON, H_MESSAGE, H_CLASS, H_PORTAL_CODE):
        if letter.header(name):
            typer.echo(f"  {name}: {letter.header(name)}")
    for key, _ in letter.headers:
        if key.startswith(("rk.original.", "rk.attempts", "rk.failed_at", "rk.source", "rk.replay.")):
            typer.echo(f"  {key}: {letter.header(key)}")
    other = sorted({k for k, _ in letter.headers if not k.startswith("rk.")})
    typer.echo(f"  other headers: {', '.join(other) or '-'}")
    typer.echo("body (masked):")
    typer.echo(masked_body(letter.value))


@dlq_cli.command("replay")
def replay_command(
    reason: ReasonOpt = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    ids: IdOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be replayed, write nothing")] = False,
    rate: Annotated[float | None, typer.Option(help="records per second at most", min=0.01)] = None,
) -> None:
    """Put matching dead letters back on their original topic (or the outbox for delivery failures)."""
    settings = load_settings()
    letters = list(_selected(settings, _filters(reason, source, since, ids)))
    for letter in letters:
        typer.echo(f"{'would replay' if dry_run else 'replaying'} {letter.id} → {replay_target(letter, settings)}")
    if dry_run:
        typer.echo(f"{len(letters)} record(s) match; nothing written (--dry-run)")
        return
    count = asyncio.run(replay(settings, letters, rate))
    typer.echo(f"replayed {count} record(s)")
