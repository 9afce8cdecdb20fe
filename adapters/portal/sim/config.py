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


class SimMode(StrEnum):
    """``xoev``: the XÖV back channel (POST /rueckkanal/v1/nachrichten); ``zbp``: the BundID/ZBP status monitor
    and mailbox (POST /zbp/v6/status and /zbp/v6/message with the signed envelope, adapters/portal/sim/zbp.py)."""

    XOEV = "xoev"
    ZBP = "zbp"


@dataclass(frozen=True)
class ZbpTrust:
    """What the ZBP simulator trusts: the CA that issued the signing certificates, the role it requires, and the
    clock skew it forgives on the token's exp."""

    ca: Path
    required_role: str = "THIRD_PARTY"
    leeway_s: int = 0


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
    mode: SimMode = SimMode.XOEV
    zbp: ZbpTrust | None = None  # required with mode zbp
