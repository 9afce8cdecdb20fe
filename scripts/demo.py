"""``make demo``: the whole way from the Fachverfahren to the portal on this machine, in one command.

Starts (or reuses) the local Kafka broker, the reference portal (``rueckkanal portal-sim``), the ZBP simulator
(``portal-sim --mode zbp``, trusting a CA made for this run) and one worker with both stages and two delivery
targets (the XÖV portal and the ZBP), each with topic names and consumer groups of this run only. Publishes every
example record of ``config/examples/`` (file-name order) and a handful of broken records, waits until the portal
and the ZBP hold every status and the dead-letter queue every broken record, and prints per Vorgang what the
portal and the BundID status monitor hold, and what went to the dead-letter queue, with the reason code. Then it
keeps running until Ctrl-C (``--once``: exits at once), stops the worker and the simulators with SIGTERM, and the
broker only if it started it.

Children log JSON (never payloads) to files in the run's state directory, ``var/demo/<run>/`` by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import segno
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from adapters.inbound.config import FachverfahrenConfig, build_adapter, load_fachverfahren
from adapters.inbound.samples import read_sample
from adapters.portal.sim.devca import issue, make_ca
from rueckkanal.codelists import codelists
from rueckkanal.resources import data_path
from rueckkanal.settings import PROJECT_ROOT, Settings, TopicSettings
from streams.app import kafka_client_options
from streams.dlq import H_REASON, H_SOURCE, H_STAGE
from streams.dlq_tool import DeadLetter, read_dead_letters

ROOT = PROJECT_ROOT
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
EXAMPLES = ROOT / "config" / "examples"
POLL_S = 0.5  # how often the portal and the DLQ are asked while waiting (with a deadline)
WIDTH = 110

Headers = list[tuple[str, bytes]]


class DemoError(Exception):
    """Something the user can act on; printed without a traceback, exit code 1."""


# -- what is published -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    fachverfahren: str
    key: str | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class Vorgang:
    fachverfahren: str  # config name, e.g. "hundesteuer"
    source: str  # its URI, the portal's "fachverfahren"
    vorgang_id: str
    messages: int  # how many status messages the portal must end up with
    antrags_id: str | None = None  # the applicationId the BundID status monitor knows it by


@dataclass(frozen=True)
class BadCase:
    record: Record
    what: str  # what was wrong with it, for the table
    stage: str
    reason: str  # the rk.error.reason it must get


def _ce(event_id: str) -> Headers:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"urn:de:leipzig:fachverfahren:hundesteuer"),
        ("ce_type", b"de.rueckkanal.antragsstatus.v1"),
        ("content-type", b"application/json"),
    ]


_LOL = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
BILLION_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{_LOL}]>'
    '<gw:Statusmitteilung xmlns:gw="urn:de:leipzig:gewerbe:statusmitteilung:2">'
    "<gw:Kopf><gw:MeldungsNr>GEW-M-2024-0950-01</gw:MeldungsNr><gw:Zeitstempel>2024-06-03T09:14:22</gw:Zeitstempel>"
    '</gw:Kopf><gw:Antrag nr="GA-2024-000950"/><gw:Status schluessel="1"><gw:Text>&lol9;</gw:Text></gw:Status>'
    "</gw:Statusmitteilung>"
)

# Published after the examples: the last one reaches a Vorgang of the examples after its terminal status.
BAD_CASES = (
    BadCase(
        Record("hundesteuer", "HST-2024-000901", b'{"vorgangId": "HST-2024-000901", "status": "100",', _ce("demo-1")),
        "JSON bricht mitten im Satz ab",
        "ingest",
        "malformed_json",
    ),
    BadCase(
        Record(
            "hundesteuer",
            "HST-2024-000906",
            b'{"vorgangId": "HST-2024-000906", "leistung": "99108001000000", "status": "999",'
            b' "statusZeit": "2024-03-04T08:12:31+01:00"}',
            _ce("demo-2"),
        ),
        "Statuscode 999 steht in keiner Codeliste",
        "ingest",
        "unknown_status",
    ),
    BadCase(
        Record(
            "bewohnerparken",
            "BWP-2024-000907",
            b'{"meldungId": "BWP-M-0907-01", "antrag": {"nummer": "BWP-2024-000907"},'
            b' "bearbeitung": {"code": "ARCHIV", "zeit": "2024-05-06 08:03:12"}}',
            [],
        ),
        "Kürzel ARCHIV fehlt in der Zuordnung (YAML)",
        "ingest",
        "unknown_status",
    ),
    BadCase(
        Record("gewerberegister", "GA-2024-000950", BILLION_LAUGHS.encode(), []),
        "XML-Bombe (Billion Laughs, DOCTYPE mit Entities)",
        "ingest",
        "xml_forbidden_construct",
    ),
    BadCase(
        Record(
            "hundesteuer",
            "HST-2024-000178",
            b'{"vorgangId": "HST-2024-000178", "leistung": "99108001000000", "status": "200",'
            b' "statusZeit": "2024-05-02T09:00:00+02:00"}',
            _ce("hst-evt-000178-04"),
        ),
        "200 In Bearbeitung nach 510 (Verfahren abgeschlossen)",
        "lifecycle",
        "illegal_transition",
    ),
)


def example_records(configs: dict[str, FachverfahrenConfig]) -> tuple[list[Record], list[Vorgang]]:
    """Every example file in file-name order, and the Vorgänge they make up (decoded as the worker will)."""
    records: list[Record] = []
    counts: dict[tuple[str, str, str], int] = {}
    antrags_ids: dict[tuple[str, str, str], str | None] = {}
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name in configs):
        config = configs[folder.name]
        adapter = build_adapter(config)
        for path in sorted(folder.glob("*.json")):
            sample = read_sample(path)
            event = adapter.decode(sample.record(config.topic))
            ident = (config.name, event.source, event.vorgang_id)
            counts[ident] = counts.get(ident, 0) + 1
            antrags_ids[ident] = event.antrags_id
            headers = [(name, value.encode()) for name, value in sample.headers.items()]
            records.append(Record(config.name, sample.key, sample.value_bytes(), headers))
    vorgaenge = [
        Vorgang(name, source, vid, n, antrags_ids[(name, source, vid)]) for (name, source, vid), n in counts.items()
    ]
    return records, vorgaenge


# -- the run's configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    run_id: str
    state_dir: Path
    bootstrap: str
    portal_port: int
    web_port: int
    topics: TopicSettings
    zbp_port: int = 8091
    status_port: int = 8095
    status_internal_port: int = 8096
    pepper: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.status_port}"

    @property
    def tracking_topic(self) -> str:
        return f"{self.topics.outbox.removesuffix('.outbox')}.tracking"

    def status_web_env(self) -> dict[str, str]:
        """status-web of this run: SQLite in the state dir, a pepper of its own, links on the run's tracking topic."""
        return {
            **self.worker_env(),
            "RK_STATUS_WEB__HOST": "127.0.0.1",
            "RK_STATUS_WEB__PORT": str(self.status_port),
            "RK_STATUS_WEB__INTERNAL_PORT": str(self.status_internal_port),
            "RK_STATUS_WEB__BASE_URL": self.status_url,
            "RK_STATUS_WEB__DATABASE_URL": f"sqlite:///{self.state_dir / 'status-web.sqlite3'}",
            "RK_STATUS_WEB__TOKEN_PEPPER": self.pepper,
            "RK_STATUS_WEB__TRACKING_TOPIC": self.tracking_topic,
        }

    @property
    def zbp_url(self) -> str:
        return f"http://127.0.0.1:{self.zbp_port}"

    @property
    def zbp_dir(self) -> Path:
        return self.state_dir / "zbp"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def worker_env(self) -> dict[str, str]:
        return {
            "RK_KAFKA__BOOTSTRAP": self.bootstrap,
            "RK_APP_ID": f"rk-demo-{self.run_id}",
            "RK_TOPICS__EVENTS": self.topics.events,
            "RK_TOPICS__OUTBOX": self.topics.outbox,
            "RK_TOPICS__DLQ": self.topics.dlq,
            "RK_TOPICS__RECEIPTS": self.topics.receipts,
            "RK_TOPICS__PARTITIONS": str(self.topics.partitions),
            "RK_FACHVERFAHREN_DIR": str(self.state_dir / "fachverfahren"),
            "RK_DATA_DIR": str(self.state_dir / "data"),
            "RK_WEB__HOST": "127.0.0.1",
            "RK_WEB__PORT": str(self.web_port),
            "RK_LOG__FORMAT": "json",
            "RK_PORTAL__NAME": "portal-sim",
            "RK_PORTAL__URL": f"{self.portal_url}/rueckkanal/v1/nachrichten",
            "RK_DELIVERY__DRAIN_DEADLINE_S": "5",
            # The second delivery target: the BundID status monitor and mailbox, signed with the run's own pair.
            "RK_TARGETS__ZBP__ADAPTER": "zbp",
            "RK_TARGETS__ZBP__NAME": "zbp-sim",
            "RK_TARGETS__ZBP__STATUS_URL": f"{self.zbp_url}/zbp/v6/status",
            "RK_TARGETS__ZBP__MESSAGE_URL": f"{self.zbp_url}/zbp/v6/message",
            "RK_TARGETS__ZBP__SIGNING_KEY": str(self.zbp_dir / "signing.key"),
            "RK_TARGETS__ZBP__SIGNING_CERT": str(self.zbp_dir / "signing.crt"),
        }


def write_fachverfahren(run: Run) -> dict[str, FachverfahrenConfig]:
    """Copies of the shipped mappings (rueckkanal/data/fachverfahren/*.yaml) whose topics carry the run id, so no run
    sees another's records."""
    target = run.state_dir / "fachverfahren"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(data_path("fachverfahren").glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["topic"] = f"{config['topic']}.demo-{run.run_id}"
        (target / path.name).write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return {config.name: config for config in load_fachverfahren(target)}


# -- child processes -------------------------------------------------------------------------------------------


@dataclass
class Child:
    """``rueckkanal <args>`` in its own session (Ctrl-C reaches only the demo), logging to a file."""

    name: str
    log: Path
    proc: subprocess.Popen[bytes]
    _read: int = 0  # bytes of the log already looked at

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], log: Path) -> Child:
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603  # our own CLI, arguments from this file
                [sys.executable, "-m", "streams", *args],
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, log, proc)

    def wait_for_event(self, event: str, deadline: float) -> None:
        """Until a JSON log line has ``"event": event``; DemoError if the child ends or time runs out first."""
        while True:
            with self.log.open("rb") as log:
                log.seek(self._read)
                for line in log:
                    if not line.endswith(b"\n"):
                        break  # still being written
                    self._read += len(line)
                    if _event(line) == event:
                        return
            if self.proc.poll() is not None:
                raise DemoError(
                    f"{self.name} ended while starting (exit {self.proc.returncode}), see {shown(self.log)}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"{self.name} did not log {event!r} in time; see {shown(self.log)}")
            time.sleep(0.1)  # polling its log file, with a deadline

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; SIGKILL only if it does not end in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"  {self.name} did not stop within {timeout:.0f} s; killing it")
            self.proc.kill()
            return self.proc.wait()


def _event(line: bytes) -> object:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed.get("event") if isinstance(parsed, dict) else None


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


def ensure_kafka() -> tuple[str, bool]:
    """The bootstrap address, and whether this demo started the broker (and so must stop it)."""
    given = os.environ.get("RK_KAFKA__BOOTSTRAP")
    if given:
        if not reachable(given):
            raise DemoError(f"RK_KAFKA__BOOTSTRAP={given} is set, but no broker answers there")
        return given, False
    bootstrap = f"127.0.0.1:{os.environ.get('RK_KAFKA_PORT', '19092')}"
    running = subprocess.run(["bash", str(KAFKA_SH), "status"], capture_output=True)  # noqa: S603, S607
    if running.returncode == 0:
        return bootstrap, False
    if subprocess.run(["bash", str(KAFKA_SH), "start"]).returncode != 0:  # noqa: S603, S607
        raise DemoError("could not start the local Kafka broker (scripts/kafka.sh start, messages above)")
    return bootstrap, True


def stop_kafka() -> None:
    subprocess.run(["bash", str(KAFKA_SH), "stop"])  # noqa: S603, S607


async def wait_ready(url: str, deadline: float) -> None:
    """Poll the worker's /readyz (503 until its consumers own partitions) until 200."""
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{url} did not answer 200 in time")
            await asyncio.sleep(POLL_S)


# -- publish, wait, read back ----------------------------------------------------------------------------------


async def publish(settings: Settings, configs: dict[str, FachverfahrenConfig], records: list[Record]) -> None:
    producer = AIOKafkaProducer(**kafka_client_options(settings.kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for r in records:  # one by one: the examples of a Vorgang must arrive in file-name order
            key = None if r.key is None else r.key.encode()
            await producer.send_and_wait(configs[r.fachverfahren].topic, r.value, key=key, headers=r.headers)
    finally:
        await producer.stop()


Timelines = dict[Vorgang, list[dict[str, Any]]]


async def collect(run: Run, settings: Settings, vorgaenge: list[Vorgang], deadline: float) -> Arrived:
    """Poll the portal and the DLQ until everything is there or the deadline passes."""
    async with aiohttp.ClientSession() as http:
        while True:
            late = time.monotonic() > deadline
            try:
                arrived = Arrived({v: await portal_messages(http, run, v) for v in vorgaenge}, [])
                arrived.zbp = await zbp_applications(http, run)
                if arrived.portal_complete() or late:  # the DLQ is slower to read: only once the portal is done
                    arrived.dead_letters.extend(await read_dead_letters(settings))
            except (aiohttp.ClientError, KafkaError, TimeoutError) as error:
                raise DemoError(f"reading the portal or the dead-letter queue failed: {error!r}") from None
            if late or not arrived.missing():
                return arrived
            await asyncio.sleep(POLL_S)


async def portal_messages(http: aiohttp.ClientSession, run: Run, vorgang: Vorgang) -> list[dict[str, Any]]:
    params = {"vorgang": vorgang.vorgang_id, "fachverfahren": vorgang.source}
    async with http.get(f"{run.portal_url}/nachrichten", params=params) as response:
        response.raise_for_status()
        body = await response.json()
    messages: list[dict[str, Any]] = body["nachrichten"]
    return sorted(messages, key=lambda m: int(m["sequence"]))


async def collect_links(run: Run, settings: Settings, vorgaenge: list[Vorgang], deadline: float) -> dict[str, str]:
    """The tracking link of every Vorgang from the tracking topic (as a Fachverfahren would read it), with its QR
    code written to ``qr/<Vorgang>.png`` and ``.svg`` in the state dir."""
    wanted = {f"{v.source}|{v.vorgang_id}": v.vorgang_id for v in vorgaenge}
    links: dict[str, str] = {}
    consumer = AIOKafkaConsumer(
        run.tracking_topic, **kafka_client_options(settings.kafka), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        while len(links) < len(wanted) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    key = (record.key or b"").decode()
                    if key in wanted:
                        links[wanted[key]] = json.loads(record.value or b"{}")["url"]
    finally:
        await consumer.stop()
    qr_dir = run.state_dir / "qr"
    qr_dir.mkdir(exist_ok=True)
    for vorgang_id, url in links.items():
        qr = segno.make(url, error="m")
        qr.save(str(qr_dir / f"{_file_stem(vorgang_id)}.png"), scale=8, border=4)
        qr.save(str(qr_dir / f"{_file_stem(vorgang_id)}.svg"), scale=4, border=4)
    return links


def _file_stem(vorgang_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in vorgang_id)


async def zbp_applications(http: aiohttp.ClientSession, run: Run) -> dict[str, dict[str, Any]]:
    """What the ZBP simulator holds, by applicationId: the status history and the mailbox messages."""
    async with http.get(f"{run.zbp_url}/zbp/antraege") as response:
        response.raise_for_status()
        body = await response.json()
    return {a["applicationId"]: a for a in body["antraege"]}


@dataclass
class Arrived:
    timelines: Timelines
    dead_letters: list[DeadLetter]
    zbp: dict[str, dict[str, Any]] = field(default_factory=dict)

    def zbp_statuses(self, vorgang: Vorgang) -> list[dict[str, Any]]:
        return list(self.zbp.get(vorgang.antrags_id or "", {}).get("statuses", []))

    def portal_complete(self) -> bool:
        return all(len(messages) >= v.messages for v, messages in self.timelines.items()) and all(
            len(self.zbp_statuses(v)) >= v.messages for v in self.timelines if v.antrags_id
        )

    def missing(self) -> list[str]:
        lines = [
            f"{v.fachverfahren} {v.vorgang_id}: {len(messages)} of {v.messages} status messages in the portal"
            for v, messages in self.timelines.items()
            if len(messages) < v.messages
        ]
        lines += [
            f"{v.fachverfahren} {v.vorgang_id}: {len(self.zbp_statuses(v))} of {v.messages} statuses in the ZBP"
            for v in self.timelines
            if v.antrags_id and len(self.zbp_statuses(v)) < v.messages
        ]
        found = {
            ((d.key or b"").decode("utf-8", "replace"), d.header(H_STAGE), d.header(H_REASON))
            for d in self.dead_letters
        }
        lines += [
            f"dead-letter queue: no {case.stage} {case.reason} entry for {case.record.key}"
            for case in BAD_CASES
            if (case.record.key, case.stage, case.reason) not in found
        ]
        return lines


# -- the table -------------------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def shown(path: Path) -> Path:
    """A path as short as it can be said: relative to the current directory if it lies below it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def heading(text: str) -> None:
    say()
    say(text)
    say("═" * len(text))


def wrapped(steps: list[str], indent: str = "  ") -> Iterator[str]:
    """The steps joined by arrows, broken before an arrow where a line would get too long."""
    line = indent + steps[0]
    for step in steps[1:]:
        if len(line) + len(step) + 3 > WIDTH:
            yield line
            line = indent + "→ " + step
        else:
            line += " → " + step
    yield line


def print_portal(run: Run, arrived: Arrived, links: dict[str, str]) -> None:
    heading(
        "Angekommen: Statusverlauf je Vorgang im Landesportal (XÖV) und im BundID-Statusmonitor (ZBP); "
        "darunter der Link für den Brief (status-web)"
    )
    antragsstatus = codelists().antragsstatus
    for vorgang, messages in sorted(arrived.timelines.items(), key=lambda i: (i[0].fachverfahren, i[0].vorgang_id)):
        say()
        say(f"{vorgang.fachverfahren.capitalize()} · {vorgang.vorgang_id} · {len(messages)} Meldungen")
        steps = [f"{m['status']} {antragsstatus.label(m['status'])}" for m in messages] or ["(noch nichts)"]
        for line in wrapped(steps):
            say(line)
        link = links.get(vorgang.vorgang_id)
        say(f"  Statusseite: {link or '(noch kein Link)'}")
        if link is not None:
            say(f"  QR-Code:     {shown(run.state_dir)}/qr/{_file_stem(vorgang.vorgang_id)}.png (und .svg)")
        if vorgang.antrags_id:
            statuses = [s["status"] for s in arrived.zbp_statuses(vorgang)]
            letters = arrived.zbp.get(vorgang.antrags_id, {}).get("messages", [])
            say(f"  BundID (ZBP): {len(statuses)} Statusmeldungen, {len(letters)} Postfachnachrichten (signiert)")
            for line in wrapped(statuses or ["(noch nichts)"], indent="    "):
                say(line)
            say(f"    Ansicht im BundID-Konto: {run.zbp_url}/zbp/ansicht/{vorgang.antrags_id}")


def print_dead_letters(run: Run, letters: list[DeadLetter]) -> None:
    heading(f"Aussortiert in die Dead-Letter-Queue ({run.topics.dlq})")
    order = [case.record.key for case in BAD_CASES]
    what = {case.record.key: case.what for case in BAD_CASES}
    keys = {letter.id: (letter.key or b"").decode("utf-8", "replace") for letter in letters}
    say(f"  {'Fachverfahren':<16} {'Vorgang':<17} {'Stufe':<10} {'Grund (rk.error.reason)':<25} Was war falsch")
    for letter in sorted(letters, key=lambda d: order.index(keys[d.id]) if keys[d.id] in order else len(order)):
        key = keys[letter.id]
        say(
            f"  {(letter.header(H_SOURCE) or '-').capitalize():<16} {key:<17} {letter.header(H_STAGE) or '-':<10} "
            f"{letter.header(H_REASON) or '-':<25} {what.get(key, '-')}"
        )


def print_links(run: Run, vorgaenge: list[Vorgang]) -> None:
    first = vorgaenge[0].vorgang_id
    heading("Zum Nachsehen")
    say(f"  Statusseiten für Bürger            {run.status_url}/s/<Link oben>, {run.status_url}/barrierefreiheit")
    say(f"  status-web-Metriken                http://127.0.0.1:{run.status_internal_port}/metrics")
    say(f"  Sicht des Simulators (kein Produkt) {run.portal_url}/status/{quote(first)}")
    say(f"  Nachrichten im Portal (JSON)       {run.portal_url}/nachrichten?vorgang={quote(first)}")
    say(f"  aktueller Stand (JSON)             {run.portal_url}/vorgaenge/{quote(first)}")
    say(f"  Worker-Metriken (Prometheus)       {run.web_url}/metrics")
    say(f"  Worker bereit?                     {run.web_url}/readyz")
    say(f"  Dead Letters auf der Kommandozeile RK_KAFKA__BOOTSTRAP={run.bootstrap} RK_TOPICS__DLQ={run.topics.dlq} \\")
    say("                                       .venv/bin/rueckkanal dlq list")
    say(f"  BundID-Statusmonitor (JSON)        {run.zbp_url}/zbp/antraege")
    logs = "worker.log, portal-sim.log, zbp-sim.log, status-web.log"
    say(f"  Logs (JSON)                        {shown(run.state_dir)}/{logs}")


# -- the run ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--once", action="store_true", help="print the result and stop everything (exit 1 if late)")
    parser.add_argument("--portal-port", type=int, default=8090, help="port of the portal simulator (8090)")
    parser.add_argument("--web-port", type=int, default=6066, help="worker metrics and health port (6066)")
    parser.add_argument("--status-port", type=int, default=8095, help="port of the citizens' status pages (8095)")
    parser.add_argument("--status-internal-port", type=int, default=8096, help="status-web metrics and link API (8096)")
    parser.add_argument("--zbp-port", type=int, default=8091, help="port of the ZBP simulator (8091)")
    parser.add_argument("--state-dir", type=Path, help="logs and databases of this run (var/demo/<run>)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds for each wait (60)")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the run's topics (3)")
    return parser.parse_args(argv)


def new_run(args: argparse.Namespace, bootstrap: str) -> Run:
    run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    state_dir = (args.state_dir or ROOT / "var" / "demo" / run_id).resolve()
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    prefix = f"rk-demo.{run_id}"
    topics = TopicSettings(
        events=f"{prefix}.events",
        outbox=f"{prefix}.outbox",
        dlq=f"{prefix}.dlq",
        receipts=f"{prefix}.receipts",
        partitions=args.partitions,
    )
    run = Run(
        run_id,
        state_dir,
        bootstrap,
        args.portal_port,
        args.web_port,
        topics,
        args.zbp_port,
        args.status_port,
        args.status_internal_port,
    )
    ca = make_ca("Rückkanal Demo-CA")  # this run's own, never committed; the ZBP simulator trusts it
    run.zbp_dir.mkdir(parents=True, exist_ok=True)
    ca.write(run.zbp_dir / "ca.pem")
    issue(ca, run.zbp_dir, "stadt-leipzig-rueckkanal-demo", key_name="signing.key", cert_name="signing.crt")
    return run


@dataclass
class Started:
    """What this demo started and so must stop again."""

    children: list[Child] = field(default_factory=list)
    kafka: bool = False


def start_children(run: Run, deadline_s: float, started: Started) -> None:
    portal_args = ["portal-sim", "--port", str(run.portal_port), "--db", str(run.state_dir / "portal.sqlite3")]
    portal = Child.start("portal-sim", portal_args, {}, run.state_dir / "portal-sim.log")
    started.children.append(portal)
    zbp_args = ["portal-sim", "--mode", "zbp", "--port", str(run.zbp_port), "--zbp-ca", str(run.zbp_dir / "ca.pem")]
    zbp = Child.start("zbp-sim", zbp_args, {}, run.state_dir / "zbp-sim.log")
    started.children.append(zbp)
    worker = Child.start("worker", ["worker", "--role", "all"], run.worker_env(), run.state_dir / "worker.log")
    started.children.append(worker)
    deadline = time.monotonic() + deadline_s
    portal.wait_for_event("portal-sim ready", deadline)
    say(f"  Portal-Simulator  {run.portal_url}  (PID {portal.proc.pid}) bereit")
    zbp.wait_for_event("portal-sim ready", deadline)
    say(f"  ZBP-Simulator     {run.zbp_url}  (PID {zbp.proc.pid}) bereit, BundID-Statusmonitor und -Postfach")
    worker.wait_for_event("worker ready", deadline)
    asyncio.run(wait_ready(f"{run.web_url}/readyz", deadline))
    say(f"  Worker            {run.web_url}  (PID {worker.proc.pid}) bereit, ingest + delivery (Ziele default, zbp)")
    status = Child.start("status-web", ["status-web"], run.status_web_env(), run.state_dir / "status-web.log")
    started.children.append(status)
    status.wait_for_event("status-web ready", deadline)
    say(f"  status-web        {run.status_url}  (PID {status.proc.pid}) bereit, Statusseiten für Bürger")


def demo(args: argparse.Namespace, started: Started) -> None:
    ports = (
        (args.portal_port, "--portal-port"),
        (args.web_port, "--web-port"),
        (args.status_port, "--status-port"),
        (args.status_internal_port, "--status-internal-port"),
        (args.zbp_port, "--zbp-port"),
    )
    for port, flag in ports:
        if not port_free(port):
            raise DemoError(f"port {port} on 127.0.0.1 is in use; pick another with {flag}")
    heading("Rückkanal-Demo")
    bootstrap, started.kafka = ensure_kafka()
    run = new_run(args, bootstrap)
    try:
        base = Settings()
    except ValidationError as error:
        raise DemoError(f"invalid settings in the environment (RK_*): {error}") from None
    kafka = base.kafka.model_copy(update={"bootstrap": bootstrap})
    settings = base.model_copy(update={"kafka": kafka, "topics": run.topics})
    say(f"  Lauf              {run.run_id}  (eigene Topics und Consumer-Gruppe, Logs in {shown(run.state_dir)})")
    say(f"  Kafka             {bootstrap}{'  (von der Demo gestartet)' if started.kafka else ''}")
    configs = write_fachverfahren(run)
    start_children(run, args.deadline, started)

    records, vorgaenge = example_records(configs)
    asyncio.run(publish(settings, configs, records + [case.record for case in BAD_CASES]))
    say(
        f"  gesendet          {len(records)} Beispielmeldungen ({len(vorgaenge)} Vorgänge aus {len(configs)} "
        f"Fachverfahren) und {len(BAD_CASES)} fehlerhafte Meldungen"
    )
    begin = time.monotonic()
    arrived = asyncio.run(collect(run, settings, vorgaenge, begin + args.deadline))
    say(f"  verarbeitet in    {time.monotonic() - begin:.1f} s")

    links = asyncio.run(collect_links(run, settings, vorgaenge, time.monotonic() + args.deadline))
    print_portal(run, arrived, links)
    print_dead_letters(run, arrived.dead_letters)
    if arrived.missing():
        raise DemoError(
            f"nicht alles angekommen / not everything arrived within {args.deadline:.0f} s:\n  "
            + "\n  ".join(arrived.missing())
            + f"\n  see {shown(run.state_dir)}/worker.log and portal-sim.log"
        )
    print_links(run, vorgaenge)
    if not args.once:
        say()
        say("Die Demo läuft weiter; beenden mit Strg+C.")
        watch(started.children)


def watch(children: list[Child]) -> None:
    """Until Ctrl-C (KeyboardInterrupt) or SIGTERM; a child that dies on its own ends the demo with an error."""
    while True:
        for child in children:
            if child.proc.poll() is not None:
                raise DemoError(f"{child.name} ended by itself (exit {child.proc.returncode}), see {shown(child.log)}")
        time.sleep(1.0)  # idle until Ctrl-C; only a liveness check of the children


def shut_down(started: Started) -> bool:
    """Stop the children (last started first) and the broker if we started it; True if all ended cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave children behind
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if started.children:
        say()
        say("Beende " + " und ".join(child.name for child in reversed(started.children)) + " …")
    clean = True
    for child in reversed(started.children):
        code = child.stop()
        if code != 0:
            say(f"  {child.name} ended with exit code {code}; see {shown(child.log)}")
            clean = False
    if started.kafka:
        stop_kafka()
    return clean


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or `kill <demo>`: stop what we started, then exit
        signal.signal(signum, _interrupt)
    started = Started()
    code = 0
    try:
        demo(args, started)
    except KeyboardInterrupt:
        pass
    except DemoError as error:
        print(f"\nmake demo: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if not shut_down(started):
            code = code or 1
    if code == 0:
        say("Alles beendet.")
    return code


if __name__ == "__main__":
    sys.exit(main())
