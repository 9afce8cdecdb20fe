"""Options of the reference portal (``rueckkanal portal-sim``); the CLI flags map onto these one to one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from adapters.portal.sim.faults import FaultSpec

NACHRICHTEN_PATH = "/rueckkanal/v1/nachrichten"
TOKEN_PATH = "/oauth2/token"  # noqa: S105  # a path, not a secret


class DuplicateAnswer(StrEnum):
    """How the portal answers a nachrichtenUUID it already has.

    ``409``: HTTP 409 Conflict with the original Quittung (same quittungsID), like an idempotent replay.
    ``s100``: HTTP 200 with a Rückweisung 0191, Grund S100 "Nachricht bereits verarbeitet".
    """

    CONFLICT = "409"
    S100 = "s100"


@dataclass(frozen=True)
class OAuth2Client:
    client_id: str
    client_secret: str
    token_ttl_s: int = 300


@dataclass(frozen=True)
class TlsServer:
    """HTTPS for the portal; with ``client_ca`` every client must present a certificate signed by it (mTLS)."""

    cert: Path
    key: Path | None = None
    client_ca: Path | None = None


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8090
    db: Path | None = None  # None: in memory, forgotten on exit
    duplicates: DuplicateAnswer = DuplicateAnswer.CONFLICT
    max_body_bytes: int = 256 * 1024
    oauth2: OAuth2Client | None = None
    tls: TlsServer | None = None
    faults: FaultSpec = field(default_factory=FaultSpec)
