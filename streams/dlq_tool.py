"""``rueckkanal dlq list|show|replay``: what operators do with dead letters once the cause is fixed.

Records are named by ``PARTITION:OFFSET`` in the DLQ topic, which never changes, unlike a position in a list.
``show`` masks personal data: it prints the ``rk.*`` headers in full and walks the parsed body with an allow-list:
only values of allow-listed fields (codes, times, protocol fields) and allow-listed names are shown, everything
else is replaced by its shape (``(field)``, ``(element)``, ``*** (12 chars)``); an unparseable body shows only its
size. A replay puts the original record back where it was first read, with its key, value and headers unchanged,
minus the old failure headers, plus ``rk.replay.*`` headers that say it is a replay. It writes only where the stage
that failed allows: a ``delivery`` failure to the outbox, an ``ingest`` or ``lifecycle`` failure to the configured
Fachverfahren topic named in ``rk.original.topic``. Any other dead letter (unknown stage, a topic that is not
configured, a malformed partition, a stub without its value) is refused with a reason, and the others still replay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from lxml import etree

from adapters.inbound.config import load_fachverfahren
from rueckkanal import safexml
from rueckkanal.errors import DecodeError
from rueckkanal.settings import DEFAULT_TARGET, Settings
from streams.app import kafka_client_options
from streams.cliutil import load_settings
from streams.dlq import is_stub, without_rk_error_headers
from streams.headers import (
    H_CLASS,
    H_FAILED_AT,
    H_MESSAGE,
    H_ORIGINAL_REASON,
    H_PARTITION,
    H_PORTAL_CODE,
    H_REASON,
    H_REPLAY_AT,
    H_REPLAY_COUNT,
    H_REPLAY_FROM,
    H_REPLAY_TARGET,
    H_SOURCE,
    H_STAGE,
    H_TARGET,
    H_TOPIC,
    Headers,
    header,
    header_int,
    is_pipeline_header,
    without_headers,
)

INGEST_STAGES = frozenset({"ingest", "lifecycle"})

# Fields whose scalar values are codes, times or protocol fields, never personal data: shown.
_SAFE_VALUES = frozenset(
    {
        "status", "statusZeit", "leistung", "specversion", "type", "datacontenttype", "time", "entscheidung",
        "waehrung", "faelligkeit", "frist", "code", "listURI", "listVersionID", "sequenznummer", "zeitpunkt",
        "erstellungszeitpunkt", "nachrichtentyp", "nachrichtenUUID", "praefix", "produkt", "produkthersteller",
        "produktversion", "standard", "version", "test",
    }
)  # fmt: skip
# Field and element names of our own contracts: the name is shown, the value masked. Any other name was chosen by
# the sender and may itself be personal data (a name, an address): shown as (field) or (element).
_KNOWN_NAMES = _SAFE_VALUES | frozenset(
    {
        "data", "id", "source", "subject", "vorgangId", "vorgangsID", "aktenzeichen", "postfachReferenz",
        "zahlung", "betrag", "verwendungszweck", "zahlungsUrl", "hinweistext", "statusText", "zusatzinformation",
        "name", "ereignisID", "statusereignis", "vorgang", "autor", "leser", "behoerdenkennung", "behoerdenname",
        "kennung", "fachverfahren", "identifikation.nachricht", "nachrichtenkopf.g2g",
        "antragsstatus.statusmeldung.0100", "antragsstatus.statusberichtigung.0102", "antragsstatus.quittung.0190",
        "antragsstatus.rueckweisung.0191",
    }
)  # fmt: skip
_MAX_SHOWN_CHARS = 200


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
        return header(self.headers, name)

    @property
    def is_stub(self) -> bool:
        return is_stub(self.headers)

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
    target: str | None = None

    def match(self, letter: DeadLetter) -> bool:
        if self.ids and letter.id not in self.ids:
            return False
        if self.reason and letter.header(H_REASON) != self.reason:
            return False
        if self.source and letter.header(H_SOURCE) != self.source:
            return False
        if self.target and failed_target(letter) != self.target:
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


@dataclass(frozen=True)
class Refused:
    """A dead letter that replay will not write, and why (one line for the operator)."""

    why: str


def source_topics(settings: Settings) -> frozenset[str]:
    """The configured Fachverfahren topics: the only topics an ingest or lifecycle failure goes back to."""
    return frozenset(fv.topic for fv in load_fachverfahren(settings.fachverfahren_dir))


def replay_target(letter: DeadLetter, settings: Settings, sources: Collection[str]) -> str | Refused:
    """Where a replay may write this dead letter, checked against the stage that failed, or why it may not.

    A delivery failure goes back to the outbox; an ingest or lifecycle failure only to the configured Fachverfahren
    topic named in ``rk.original.topic`` (never the outbox: that would skip the lifecycle guard).
    """
    if letter.is_stub or letter.value is None:
        return Refused("a stub without the original value (it was too large to keep): nothing to replay")
    if letter.header(H_PARTITION) is not None and header_int(letter.headers, H_PARTITION, minimum=0) is None:
        return Refused(f"{H_PARTITION} is not a partition number")
    stage = letter.header(H_STAGE)
    if stage == "delivery":
        return settings.topics.outbox
    if stage not in INGEST_STAGES:
        return Refused(f"{H_STAGE} {_quoted(stage)} is not one replay knows (delivery, ingest, lifecycle)")
    topic = letter.header(H_TOPIC)
    if topic is not None and topic in sources:
        return topic
    if topic == settings.topics.outbox:
        return Refused(f"an {stage} failure never goes to the outbox (it would skip the lifecycle guard)")
    return Refused(f"{H_TOPIC} {_quoted(topic)} is not a configured Fachverfahren topic")


def _quoted(value: str | None) -> str:
    if value is None:
        return "(missing)"
    shown = value if len(value) <= 80 else value[:80] + "…"
    return repr(shown)


def replay_partition(letter: DeadLetter, partitions: Iterable[int]) -> int | None:
    """The partition the record was first read from, if the topic still has it.

    A Vorgang's records are ordered within one partition, and the key alone does not name it: a Fachverfahren may
    use another partitioner, and the outbox partition is the Vorgang id's (streams/partitioner.py), not the key's.
    Without the header, or after the topic lost that partition, the producer's key partitioner decides.
    """
    original = header_int(letter.headers, H_PARTITION, minimum=0)
    return original if original is not None and original in set(partitions) else None


def failed_target(letter: DeadLetter) -> str | None:
    """The delivery target a delivery dead letter failed at (``rk.error.target``; the default target for dead
    letters written before there were targets), or None for the other stages."""
    if letter.header(H_STAGE) != "delivery":
        return None
    return letter.header(H_TARGET) or DEFAULT_TARGET


def replay_headers(letter: DeadLetter, now: datetime) -> Headers:
    """The replayed record's headers: the original ones without ``rk.error.*`` and old ``rk.replay.*``, plus the
    replay's own; a delivery dead letter names its target (``rk.replay.target``) so that only it delivers again."""
    previous = header_int(letter.headers, H_REPLAY_COUNT, minimum=0) or 0
    kept = without_headers(without_rk_error_headers(letter.headers), "rk.replay.")
    headers = [
        *kept,
        (H_REPLAY_COUNT, str(previous + 1).encode()),
        (H_REPLAY_AT, now.isoformat(timespec="milliseconds").encode()),
        (H_REPLAY_FROM, letter.id.encode()),
    ]
    target = failed_target(letter)
    if target is not None:
        headers.append((H_REPLAY_TARGET, target.encode()))
    return headers


async def replay(settings: Settings, planned: Iterable[tuple[DeadLetter, str]], rate: float | None) -> int:
    """Write each dead letter to its checked target (see :func:`replay_target`)."""
    producer = AIOKafkaProducer(
        **kafka_client_options(settings.kafka),
        acks="all",
        enable_idempotence=True,
        max_request_size=settings.kafka.max_request_size,
    )
    await producer.start()
    count = 0
    try:
        for letter, target in planned:
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
    """The body for a person to read: parsed and walked with the allow-list; anything unparseable only its size."""
    if not value:
        return "(empty)"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(value)} bytes, not UTF-8)"
    try:
        return _render_json(json.loads(text), safe=False, depth=0)
    except (ValueError, RecursionError):
        pass
    if text.lstrip().startswith("<"):
        masked = _masked_xml(value)
        if masked is not None:
            return masked
    return f"({len(value)} bytes, not parseable as JSON or XML)"


def _render_json(data: Any, *, safe: bool, depth: int) -> str:
    """JSON text of ``data``: names not allow-listed as ``(field)``, scalars shown only under a safe field."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(data, dict):
        if not data:
            return "{}"
        items = [
            f"{inner}{_json_name(k)}: {_render_json(v, safe=k in _SAFE_VALUES, depth=depth + 1)}"
            for k, v in data.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(data, list):
        if not data:
            return "[]"
        items = [inner + _render_json(v, safe=safe, depth=depth + 1) for v in data]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if data is None:
        return "null"
    if safe and (isinstance(data, bool | int | float) or _showable(data)):
        return json.dumps(data, ensure_ascii=False)
    return json.dumps(_shape(data), ensure_ascii=False)


def _json_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False) if name in _KNOWN_NAMES else "(field)"


def _showable(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_SHOWN_CHARS and value.isprintable()


def _shape(value: Any) -> str:
    if isinstance(value, bool):
        return "*** (boolean)"
    if isinstance(value, int | float):
        return "*** (number)"
    return _mask_scalar(str(value))


def _mask_scalar(text: str) -> str:
    return f"*** ({len(text)} chars)"


def _masked_xml(value: bytes) -> str | None:
    """The XML walked element by element (safe parser: no DTD, no entities); None if it cannot be parsed.

    An element's name is shown only if allow-listed (else ``(element)``); its attribute values only if it and the
    attribute's name are allow-listed, its text only if it is also a leaf (no child elements).
    Mixed content, tails and CDATA are masked; comments and processing instructions are dropped.
    """
    try:
        root = safexml.parse(value, max_bytes=len(value))
    except DecodeError:
        return None
    lines: list[str] = []
    _walk_xml(root, 0, lines)
    return "\n".join(lines)


def _walk_xml(element: Any, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    local = etree.QName(element).localname
    name = local if local in _KNOWN_NAMES else "(element)"
    children = list(element)
    leaf = not any(isinstance(child.tag, str) for child in children)
    safe = local in _SAFE_VALUES
    attributes = ""
    for attribute, attribute_value in element.attrib.items():
        attribute_local = etree.QName(attribute).localname
        shown_name = attribute_local if attribute_local in _KNOWN_NAMES else "(attribute)"
        safe_attribute = safe and attribute_local in _SAFE_VALUES and _showable(attribute_value)
        shown = attribute_value if safe_attribute else None
        attributes += f' {shown_name}="{shown if shown is not None else _mask_scalar(attribute_value)}"'
    text = (element.text or "").strip()
    if leaf:
        body = text if safe and _showable(text) else (_mask_scalar(text) if text else "")
        lines.append(f"{pad}<{name}{attributes}>{body}</{name}>" if body else f"{pad}<{name}{attributes}/>")
        return
    lines.append(f"{pad}<{name}{attributes}>")
    if text:
        lines.append(f"{pad}  {_mask_scalar(text)}")
    for child in children:
        if isinstance(child.tag, str):
            _walk_xml(child, depth + 1, lines)
        tail = (child.tail or "").strip()  # a comment's or processing instruction's tail is still the parent's text
        if tail:
            lines.append(f"{pad}  {_mask_scalar(tail)}")
    lines.append(f"{pad}</{name}>")


# -- the commands --------------------------------------------------------------------------------------------

dlq_cli = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)

ReasonOpt = Annotated[str | None, typer.Option(help="only this rk.error.reason, e.g. schema_invalid")]
SourceOpt = Annotated[str | None, typer.Option(help="only this Fachverfahren, e.g. hundesteuer")]
SinceOpt = Annotated[
    datetime | None, typer.Option(help="only records that failed at or after this time (UTC if no zone)")
]
IdOpt = Annotated[list[str] | None, typer.Option("--id", help="only this record, PARTITION:OFFSET; repeatable")]
TargetOpt = Annotated[
    str | None, typer.Option(help="only delivery dead letters of this target (rk.error.target), e.g. zbp")
]


def _filters(
    reason: str | None, source: str | None, since: datetime | None, ids: list[str] | None, target: str | None = None
) -> Filters:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return Filters(reason=reason, source=source, since=since, ids=frozenset(ids or ()), target=target)


def _selected(settings: Settings, filters: Filters) -> Iterator[DeadLetter]:
    return (letter for letter in asyncio.run(read_dead_letters(settings)) if filters.match(letter))


@dlq_cli.command("list")
def list_command(
    reason: ReasonOpt = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    ids: IdOpt = None,
    target: TargetOpt = None,
) -> None:
    """One line per dead letter: id, time, stage, reason, source, original topic."""
    settings = load_settings()
    typer.echo(f"{'ID':<10} {'FAILED AT (UTC)':<24} {'STAGE':<10} {'REASON':<24} {'SOURCE':<20} ORIGINAL TOPIC")
    for letter in _selected(settings, _filters(reason, source, since, ids, target)):
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
    first = (H_STAGE, H_REASON, H_ORIGINAL_REASON, H_MESSAGE, H_CLASS, H_PORTAL_CODE)
    for name in first:
        if letter.header(name):
            typer.echo(f"  {name}: {letter.header(name)}")
    shown = {name.lower() for name in first}
    for key in dict.fromkeys(k for k, _ in letter.headers):  # each name once, its last value (headers.header)
        if is_pipeline_header(key) and key.lower() not in shown:
            typer.echo(f"  {key}: {letter.header(key)}")
    other = sorted({k for k, _ in letter.headers if not is_pipeline_header(k)})
    typer.echo(f"  other headers: {', '.join(other) or '-'}")
    if letter.is_stub:
        typer.echo("body: none (a stub: the original value was too large to keep; see rk.original.size/sha256)")
        return
    typer.echo("body (masked):")
    typer.echo(masked_body(letter.value))


@dlq_cli.command("replay")
def replay_command(
    reason: ReasonOpt = None,
    source: SourceOpt = None,
    since: SinceOpt = None,
    ids: IdOpt = None,
    target: TargetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be replayed, write nothing")] = False,
    rate: Annotated[float | None, typer.Option(help="records per second at most", min=0.01)] = None,
) -> None:
    """Put matching dead letters back where the failed stage allows: the outbox for delivery failures, the
    configured Fachverfahren topic for ingest and lifecycle failures. Refused records are listed; exit code 1."""
    settings = load_settings()
    letters = list(_selected(settings, _filters(reason, source, since, ids, target)))
    needs_sources = any(letter.header(H_STAGE) in INGEST_STAGES for letter in letters)
    sources = source_topics(settings) if needs_sources else frozenset()
    planned: list[tuple[DeadLetter, str]] = []
    refused = 0
    for letter in letters:
        topic = replay_target(letter, settings, sources)
        if isinstance(topic, Refused):
            refused += 1
            typer.echo(f"refusing {letter.id}: {topic.why}")
        else:
            planned.append((letter, topic))
            only = failed_target(letter)
            to = f"{topic} (target {only})" if only else topic
            typer.echo(f"{'would replay' if dry_run else 'replaying'} {letter.id} → {to}")
    if dry_run:
        typer.echo(f"{len(letters)} record(s) match, {refused} refused; nothing written (--dry-run)")
    else:
        count = asyncio.run(replay(settings, planned, rate)) if planned else 0
        typer.echo(f"replayed {count} record(s)" + (f", refused {refused}" if refused else ""))
    if refused:
        raise typer.Exit(1)
