"""One frozen settings object for the whole process.

Sources, strongest first: constructor arguments, environment (prefix ``RK_``, nested with ``__``, e.g.
``RK_KAFKA__BOOTSTRAP=broker:9092``), files in ``RK_SECRETS_DIR`` (one file per secret, as Kubernetes mounts
them), the YAML file named by ``RK_CONFIG_FILE``, then the defaults below. Secrets are ``SecretStr`` so that a
dump, a repr or a log line shows ``**********`` instead of the value.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from rueckkanal import __version__
from rueckkanal.resources import data_path

#: The source tree, for scripts, tests and benchmarks only: nothing read at run time is looked up here (an installed
#: wheel has no source tree); run-time files are package data (rueckkanal/resources.py).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSecurity(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(_Section):
    bootstrap: str = Field("127.0.0.1:19092", description="host:port[,host:port...] of the brokers")
    security_protocol: KafkaSecurity = KafkaSecurity.PLAINTEXT
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    max_request_size: int = Field(
        1_048_576,
        ge=64 * 1024,
        description="largest record (bytes, with key and headers) any of our producers sends; a dead letter "
        "larger than this is written as a stub with size and SHA-256 instead of the original value",
    )


DAY_MS = 24 * 60 * 60 * 1000
DLQ_RETENTION_MS = 365 * DAY_MS
RECEIPTS_RETENTION_MS = 90 * DAY_MS
STORE_RETRY_PAUSE_S = 1.0  # status-web: the pause before a batch it could not store (database or broker) is read again


class TopicSettings(_Section):
    events: str = "rueckkanal.events"
    outbox: str = "rueckkanal.outbox"
    dlq: str = "rueckkanal.dlq"
    receipts: str = "rueckkanal.receipts"
    partitions: int = Field(
        12, ge=1, description="partitions of events and outbox; the upper bound for worker replicas"
    )
    replication_factor: int = Field(1, ge=1)
    create_source_topics: bool = Field(
        True,
        description="create missing Fachverfahren topics at start (dev, demo); off where the Fachverfahren own them",
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of the pipeline's topics; unset: 2 from a replication factor of 3, else 1 "
        "(with acks=all a write then survives the loss of one broker, and one broker down never blocks writes)",
    )
    dlq_retention_ms: int = Field(
        DLQ_RETENTION_MS,
        ge=-1,
        description="retention.ms of the DLQ topic (-1: forever); dead letters wait for a person, so a year: "
        "a cause found late (an annual fee run, a holiday) can still be replayed. A shorter topic is refused",
    )
    receipts_retention_ms: int = Field(
        RECEIPTS_RETENTION_MS,
        ge=-1,
        description="retention.ms of the receipts topic (-1: forever); 90 days of proof of delivery for a "
        "citizen's or the portal's question about a message. A shorter topic is logged as a warning",
    )

    @model_validator(mode="after")
    def _insync_reachable(self) -> Self:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                "topics.min_insync_replicas above topics.replication_factor: no acks=all write could succeed"
            )
        return self

    @property
    def insync_replicas(self) -> int:
        """The min.insync.replicas the pipeline's topics get and are checked against."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 2 if self.replication_factor >= 3 else 1


class WebSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104  # the pod's probes and Prometheus reach it from outside
    port: int = Field(6066, ge=1, le=65535)
    stall_after_s: float = Field(
        600.0,
        gt=0,
        description="/healthz fails when a stage has had work waiting this long without a step forward; must "
        "exceed the longest expected quiet time (retry delay, Retry-After cap, breaker open time, request timeout)",
    )


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogSettings(_Section):
    format: LogFormat = LogFormat.JSON
    level: str = "INFO"
    hash_key: SecretStr | None = Field(
        None,
        description="key of the Vorgang hash in log lines; set it (file rk_log__hash_key) so that all replicas "
        "hash a Vorgang alike, and an operator can find one Vorgang's lines across pods. Unset: random per process",
    )


class IngestSettings(_Section):
    lifecycle_policy: Literal["strict", "warn"] = Field(
        "strict", description="strict: illegal or stale events go to the DLQ; warn: deliver them and count"
    )


class StateSettings(_Section):
    """The ingest's lifecycle state (the faust Table ``vorgaenge``): its local store, retention and standbys.

    Why these defaults: docs/operations.md, "Lifecycle state".
    """

    store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="rocksdb: on disk under data_dir, a restart with the store intact reads only the changelog's "
        "tail; memory: every start reads the whole changelog and every Vorgang stays in RAM (tests)",
    )
    retention_days: float = Field(
        400.0,
        gt=0,
        description="a Vorgang in a terminal status (420, 500, 510) is removed from the state this long after its "
        "last status time: a year without Rechtsbehelfsbelehrung (VwGO § 58) plus Bekanntgabe and margin",
    )
    sweep_interval_s: float = Field(60.0, gt=0, description="how often the retention sweep runs")
    sweep_max_keys: int = Field(
        20_000, ge=1, description="Vorgänge the sweep examines per run, over all partitions this worker holds"
    )
    standby_replicas: int = Field(
        1, ge=0, description="workers that keep a warm copy of each partition's state (faust table_standby_replicas)"
    )
    rocksdb_block_cache_mb: int = Field(4, ge=1, description="RocksDB block cache per partition")
    rocksdb_write_buffer_mb: int = Field(4, ge=1, description="RocksDB memtable size per partition (two of them)")


class DeliverySettings(_Section):
    """How the delivery stage paces itself; see streams/delivery for why each bound exists."""

    window_per_partition: int = Field(2000, ge=1, description="unfinished messages per partition before pausing it")
    max_concurrent_requests: int = Field(256, ge=1, description="portal requests in flight at once")
    commit_interval_s: float = Field(1.0, gt=0)
    drain_deadline_s: float = Field(20.0, gt=0, description="on SIGTERM/rebalance; below the pod's grace period")
    retry_base_delay_s: float = Field(0.2, gt=0)
    retry_max_delay_s: float = Field(30.0, gt=0)
    retry_after_cap_s: float = Field(300.0, gt=0)
    retry_budget_s: float = Field(3600.0, gt=0, description="give up on a transient failure after this age")
    breaker_failure_threshold: int = Field(20, ge=1, description="consecutive transient failures that open it")
    breaker_open_s: float = Field(2.0, gt=0)
    breaker_max_open_s: float = Field(30.0, gt=0)


class BehoerdeSettings(_Section):
    """A Behördenkennung (Präfix from the code list + Kennung) and the Behörde's name (required, as in XInneres)."""

    praefix: str = Field(pattern=r"^[a-z]{2,8}$", description="code of the Behördenkennung-Präfix list (DVDV)")
    kennung: str = Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")
    name: str = Field(min_length=1, max_length=255)


class XoevSettings(_Section):
    """Who we say we are in every XÖV message, and to whom we write."""

    produkt: str = Field("Rückkanal", min_length=1, max_length=128)
    produkthersteller: str = Field("Stadt Leipzig", min_length=1, max_length=128)
    produktversion: str = Field(__version__, min_length=1, max_length=128)
    autor: BehoerdeSettings = BehoerdeSettings(praefix="ags", kennung="14713000", name="Stadt Leipzig")
    leser: BehoerdeSettings = BehoerdeSettings(praefix="lap", kennung="14-amt24", name="Amt24 Sachsen")
    test: bool = Field(False, description="mark every message as a test message (XÖV attribute test)")


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): a request there never leaves the machine."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class PortalReceipt(StrEnum):
    """What proves a delivery: the XÖV Quittung (or a Rückweisung that counts as delivered), or for a back channel
    that sends none, any 2xx (409: already there)."""

    QUITTUNG = "quittung"
    HTTP_2XX = "http_2xx"


class PortalAuth(StrEnum):
    NONE = "none"
    OAUTH2 = "oauth2"
    MTLS = "mtls"


class PortalTimeouts(_Section):
    connect_s: float = Field(5.0, gt=0, description="TCP and TLS connection set-up")
    total_s: float = Field(30.0, gt=0, description="one whole request, connection to the last byte of the answer")


class PortalOAuth2(_Section):
    """OAuth2 client credentials; client authentication HTTP Basic (RFC 6749 default) or in the form body."""

    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    refresh_margin_s: float = Field(30.0, ge=0, description="refresh this long before the token expires")


class PortalTls(_Section):
    ca_bundle: Path | None = Field(None, description="PEM file of CAs to trust instead of the system store")
    client_cert: Path | None = Field(None, description="PEM client certificate (mTLS); may contain the key")
    client_key: Path | None = Field(None, description="PEM private key of the client certificate")


class PortalSettings(_Section):
    """The portal delivery talks to (adapters/portal/xoev_http.py); the default is a local ``rueckkanal portal-sim``."""

    # A refusal must not echo the section: it holds the OAuth2 client secret.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field("portal", pattern=r"^[a-z0-9_\-]{1,40}$", description="the metric label `portal`")
    url: HttpUrl = HttpUrl("http://127.0.0.1:8090/rueckkanal/v1/nachrichten")
    timeouts: PortalTimeouts = PortalTimeouts()
    auth: PortalAuth = PortalAuth.NONE
    oauth2: PortalOAuth2 | None = None
    tls: PortalTls = PortalTls()
    max_connections: int = Field(
        256, ge=1, le=10_000, description="connection pool limit; below delivery.max_concurrent_requests it caps them"
    )
    max_response_bytes: int = Field(64 * 1024, ge=1024, description="larger answers are not parsed")
    retry_after_cap_s: float = Field(300.0, gt=0, description="upper bound for the portal's Retry-After")
    receipt: PortalReceipt = Field(
        PortalReceipt.QUITTUNG,
        description="quittung: delivered only with a readable Quittung 0190 (or a Rückweisung that counts as "
        "delivered); http_2xx: any 2xx counts, for back channels that send no Quittung",
    )
    allow_insecure_http: bool = Field(
        False,
        description="accept plain http:// for portal.url and portal.oauth2.token_url on a non-loopback host "
        "(development and tests only: the message, the bearer token and the client secret travel in clear)",
    )

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> Self:
        if self.allow_insecure_http:
            return self
        urls = {"portal.url": self.url}
        if self.oauth2 is not None:
            urls["portal.oauth2.token_url"] = self.oauth2.token_url
        for name, url in urls.items():
            if url.scheme != "https" and not is_loopback_host(url.host):
                raise ValueError(
                    f"{name} must use https:// (plain http is accepted only for a loopback host, or with "
                    "portal.allow_insecure_http: true in development)"
                )
        return self

    @model_validator(mode="after")
    def _auth_complete(self) -> Self:
        if self.auth is PortalAuth.OAUTH2 and self.oauth2 is None:
            raise ValueError("auth=oauth2 needs portal.oauth2 (token_url, client_id, client_secret)")
        if self.auth is PortalAuth.MTLS and self.tls.client_cert is None:
            raise ValueError("auth=mtls needs portal.tls.client_cert")
        if self.tls.client_key is not None and self.tls.client_cert is None:
            raise ValueError("portal.tls.client_key without portal.tls.client_cert")
        return self


_RECHTSBEHELFSBELEHRUNG = (
    "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden. Der Widerspruch "
    "ist bei der Stadt Leipzig, die den Bescheid erlassen hat, schriftlich, zur Niederschrift oder elektronisch "
    "einzulegen. Elektronisch ist er mit dem Online-Formular nach Anmeldung mit der BundID oder als Nachricht an "
    "das De-Mail-Postfach der Stadt möglich; eine einfache E-Mail genügt nicht.\n\n"
    "Maßgeblich ist die Rechtsbehelfsbelehrung in Ihrem Bescheid."
)


class WiderspruchSettings(_Section):
    """What the status page says about a Widerspruch: the online form (eID/BundID) and the legal text."""

    form_url: HttpUrl = Field(
        HttpUrl("https://amt24.sachsen.de/widerspruch"), description="the online form; the page only links to it"
    )
    rechtsbehelfsbelehrung: str = Field(
        _RECHTSBEHELFSBELEHRUNG, min_length=1, max_length=4000, description="German; paragraphs split by blank lines"
    )


class StatusWebSettings(_Section):
    """The citizen status page (``rueckkanal status-web``): its database, links, limits and texts."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # database_url has a password

    host: str = "0.0.0.0"  # noqa: S104  # the Service and the probes reach it from outside the pod
    port: int = Field(8095, ge=1, le=65535, description="the citizens' pages (behind the ingress)")
    internal_port: int = Field(
        8096, ge=1, le=65535, description="metrics, health and the link API for Fachverfahren; never public"
    )
    base_url: HttpUrl = Field(
        HttpUrl("http://127.0.0.1:8095"), description="public address of the pages: links and QR codes start here"
    )
    database_url: SecretStr = Field(
        SecretStr("sqlite:////tmp/rueckkanal/status-web.sqlite3"),
        description="sqlite:///<absolute path> (one replica) or postgresql://user:password@host:port/db",
    )
    token_pepper: SecretStr | None = Field(
        None, description="key of the token digests (file rk_status_web__token_pepper); the same for every replica"
    )
    api_token: SecretStr | None = Field(
        None, description="bearer token of the link API for Fachverfahren (file rk_status_web__api_token); unset: off"
    )
    link_ttl_days: int = Field(90, ge=1, description="links stop working this long after the final status arrived")
    rate_limit_per_minute: int = Field(60, ge=1, description="page requests per client and minute, per replica")
    trusted_proxies: int = Field(
        0, ge=0, le=5, description="reverse proxies in front that append X-Forwarded-For (0: the peer is the client)"
    )
    tracking_topic: str = Field("rueckkanal.tracking", description="link records for Fachverfahren (key = Vorgang)")
    publish_tracking: bool = Field(True, description="mint a link for each new Vorgang and publish it there")
    consumer_session_timeout_ms: int = Field(10_000, ge=1000, description="a dead replica's partitions move after this")
    page_deadline_s: float = Field(
        5.0, gt=0, description="a page not built within this (a slow or locked database) is answered 503"
    )
    store_deadline_s: float = Field(
        60.0, gt=0, description="an outbox batch the database has not stored within this is refused and read again"
    )
    city: str = Field("Stadt Leipzig", min_length=1, max_length=100)
    estimate_min_count: int = Field(
        20,
        ge=1,
        description="the page shows the usual time to a decision only when at least this many Vorgänge of "
        "the Leistung completed that step in the last 12 months",
    )
    accessibility_contact_email: str = Field("barrierefreiheit@leipzig.de", pattern=r"^[^@\s]+@[^@\s]+$")
    accessibility_contact_phone: str | None = Field("0341 123-0", max_length=40)
    accessibility_statement_date: date = date(2026, 3, 1)
    # Saxony's body for the enforcement procedure of EU directive 2016/2102 (docs/status-web.md): another state's
    # city names its own.
    enforcement_url: HttpUrl = HttpUrl("https://www.durchsetzungsstelle.sachsen.de/")
    enforcement_name: str = "Durchsetzungsstelle des Freistaates Sachsen bei der Sächsischen Staatskanzlei"
    widerspruch: WiderspruchSettings = WiderspruchSettings()
    widerspruch_per_leistung: dict[str, WiderspruchSettings] = Field(
        default_factory=dict, description="Leistungsschlüssel → form and text, where they differ from the default"
    )


class ZbpLimits(_Section):
    """Field limits in characters (code points). Longer text is shortened at a word boundary with "…", never refused.

    The defaults are those of the public ZBP SDK (docs/zbp.md); a portal operator who documents others sets them here.
    """

    public_service_name: int = Field(100, ge=1, le=10_000)
    sender_name: int = Field(100, ge=1, le=10_000)
    status_details: int = Field(50, ge=1, le=10_000)
    additional_information: int = Field(100, ge=1, le=10_000)
    reference: int = Field(50, ge=1, le=10_000, description="status_v6 reference (the Aktenzeichen)")
    message_title: int = Field(255, ge=1, le=1024)
    message_reference: int = Field(255, ge=1, le=10_000)
    message_sender: int = Field(255, ge=1, le=10_000)
    message_service: int = Field(255, ge=1, le=10_000)


#: The keys of ``delivery`` a target may set for itself; the drain deadline is the process's (its stop), not a
#: target's.
TARGET_DELIVERY_DESCRIPTION = (
    "keys of the `delivery` section that differ for this target (e.g. its retry budget or breaker); "
    "the others, and always drain_deadline_s, come from `delivery`"
)
PROCESS_WIDE_DELIVERY_KEYS = frozenset({"drain_deadline_s"})


class ZbpSettings(_Section):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    """A BundID/ZBP target (adapters/portal/zbp.py): status_v6 and message_v6 in the signed envelope."""

    adapter: Literal["zbp"] = "zbp"
    name: str = Field("zbp", pattern=r"^[a-z0-9_\-]{1,40}$", description="the metric label `portal`")
    status_url: HttpUrl = HttpUrl("http://127.0.0.1:8091/zbp/v6/status")
    message_url: HttpUrl = HttpUrl("http://127.0.0.1:8091/zbp/v6/message")
    signing_key: Path = Field(description="PEM private key (RSA) of the signing certificate; a file, re-read on change")
    signing_cert: Path = Field(description="PEM certificate whose CN is the JWT's signer; a file, re-read on change")
    signing_key_password: SecretStr | None = None
    sender_name: str | None = Field(
        None, min_length=1, description="senderName / sender; unset: xoev.autor.name (the Behörde's name)"
    )
    roles: tuple[str, ...] = Field(("THIRD_PARTY",), min_length=1, description="the JWT's roles claim")
    token_ttl_s: int = Field(1800, ge=60, le=86_400, description="exp = iat + this (the SDK: 30 minutes)")
    stork_qaa_level: int = Field(3, ge=1, le=4, description="message_v6 STORK QAA level a reader must have")
    message_statuses: tuple[str, ...] = Field(
        ("210", "300", "410"), description="statuses also sent as a mailbox message when a BundID mailbox is known"
    )
    mailbox_prefix: str = Field(
        "bundid:postfach:", description="postfachReferenz = this prefix + UUID (or a bare UUID) is a BundID mailbox"
    )
    status_map: dict[str, str] = Field(
        default_factory=dict,
        description="Antragsstatus code → ZBP status; overrides the code list's column; an empty value: the status "
        "is not sent to the ZBP (dead-lettered as zbp_status_unmapped)",
    )
    limits: ZbpLimits = ZbpLimits()
    status_service: str = "urn:schema-fitko-de:fit-connect:id.bund.de:status_v6"
    message_service: str = "urn:schema-fitko-de:fit-connect:id.bund.de:message_v6"
    status_schema: str = Field(
        "https://schema.fitko.de/fit-connect/id.bund.de/message_v6/1.0.0/zbp-message.schema.json",
        description="the SDK names the message_v6 schema for status updates too (docs/zbp.md)",
    )
    message_schema: str = "https://schema.fitko.de/fit-connect/id.bund.de/message_v6/1.0.0/zbp-message.schema.json"
    auth: PortalAuth = PortalAuth.NONE
    oauth2: PortalOAuth2 | None = None
    tls: PortalTls = PortalTls()
    timeouts: PortalTimeouts = PortalTimeouts()
    max_connections: int = Field(64, ge=1, le=10_000)
    max_response_bytes: int = Field(64 * 1024, ge=1024)
    retry_after_cap_s: float = Field(300.0, gt=0)
    allow_insecure_http: bool = False
    delivery: dict[str, Any] = Field(default_factory=dict, description=TARGET_DELIVERY_DESCRIPTION)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.allow_insecure_http:
            urls = {"status_url": self.status_url, "message_url": self.message_url}
            if self.oauth2 is not None:
                urls["oauth2.token_url"] = self.oauth2.token_url
            for name, url in urls.items():
                if url.scheme != "https" and not is_loopback_host(url.host):
                    raise ValueError(f"zbp {name} must use https:// (or allow_insecure_http in development)")
        if self.auth is PortalAuth.OAUTH2 and self.oauth2 is None:
            raise ValueError("zbp auth=oauth2 needs oauth2 (token_url, client_id, client_secret)")
        if self.auth is PortalAuth.MTLS and self.tls.client_cert is None:
            raise ValueError("zbp auth=mtls needs tls.client_cert")
        if any(not value.isascii() for value in self.status_map.values()):
            raise ValueError("zbp status_map values must be ASCII")
        return self


# Delivery targets: see rueckkanal/targets.py.
DEFAULT_TARGET = "default"
TARGET_NAME_PATTERN = r"^[a-z][a-z0-9_\-]{0,30}$"


class XoevHttpTargetSettings(PortalSettings):
    """One more XÖV back channel as a delivery target: the keys of ``portal`` plus ``adapter: xoev_http``."""

    adapter: Literal["xoev_http"] = "xoev_http"
    delivery: dict[str, Any] = Field(default_factory=dict, description=TARGET_DELIVERY_DESCRIPTION)


TargetSettings = Annotated[XoevHttpTargetSettings | ZbpSettings, Field(discriminator="adapter")]
TargetName = Annotated[str, Field(pattern=TARGET_NAME_PATTERN)]


class Settings(BaseSettings):
    """Everything a worker needs to know, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="RK_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,  # a refusal names the setting and the rule, never the value (it may be a secret)
    )

    app_id: str = Field("rueckkanal", description="consumer group and changelog topic prefix")
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    xoev: XoevSettings = XoevSettings()
    ingest: IngestSettings = IngestSettings()
    state: StateSettings = StateSettings()
    delivery: DeliverySettings = DeliverySettings()
    portal: PortalSettings = PortalSettings()
    status_web: StatusWebSettings = StatusWebSettings()
    targets: dict[TargetName, TargetSettings] = Field(
        default_factory=dict,
        description="more delivery targets beside `portal` (the default target), each its own consumer group; "
        "see rueckkanal/targets.py",
    )
    fachverfahren_dir: Path = Field(
        data_path("fachverfahren"),
        description="the Fachverfahren mappings (*.yaml); default: the ones shipped in the package",
    )
    data_dir: Path = Field(
        Path("/tmp/rueckkanal"),  # noqa: S108  # local table state only; the changelog topic is the truth
        description="faust's local table store",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("RK_SECRETS_DIR")
        if secrets_dir:
            # One file per secret, named like its variable in lower case (``rk_kafka__sasl_password``), as a
            # Kubernetes Secret volume mounts them; read when the settings are built, not when this module loads.
            sources.append(
                NestedSecretsSettingsSource(
                    file_secret_settings,
                    secrets_dir=secrets_dir,
                    secrets_nested_delimiter="__",
                    secrets_dir_missing="error",
                )
            )
        config_file = os.environ.get("RK_CONFIG_FILE")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _target_delivery_valid(self) -> Self:
        for name, target in self.targets.items():
            process_wide = sorted(PROCESS_WIDE_DELIVERY_KEYS.intersection(target.delivery))
            if process_wide:
                raise ValueError(f"targets.{name}.delivery: {', '.join(process_wide)} is set in `delivery` only")
            try:
                self.delivery_for(name)
            except ValueError as error:
                raise ValueError(f"targets.{name}.delivery: {error}") from None
        return self

    @model_validator(mode="after")
    def _stall_longer_than_any_expected_wait(self) -> Self:
        for name in self.target_names():
            d = self.delivery_for(name)
            timeouts = self.portal.timeouts if name == DEFAULT_TARGET else self.targets[name].timeouts
            quiet = max(d.retry_max_delay_s, d.retry_after_cap_s, d.breaker_max_open_s) + timeouts.total_s
            if self.web.stall_after_s <= quiet:
                where = "portal" if name == DEFAULT_TARGET else f"targets.{name}"
                raise ValueError(
                    f"web.stall_after_s must exceed {quiet:.0f} s: the longest retry delay, Retry-After cap or "
                    f"breaker open time plus {where}.timeouts.total_s, or /healthz would fail a delivery that is only "
                    "waiting"
                )
        if self.web.stall_after_s <= self.status_web.store_deadline_s + STORE_RETRY_PAUSE_S:
            raise ValueError(
                f"web.stall_after_s must exceed status_web.store_deadline_s + {STORE_RETRY_PAUSE_S:.0f} s, or "
                "status-web's /healthz would fail a batch that is only waiting for its database"
            )
        return self

    def delivery_for(self, target: str) -> DeliverySettings:
        """The delivery bounds of one target: ``delivery``, with the keys the target's ``delivery`` sets."""
        if target == DEFAULT_TARGET or not self.targets[target].delivery:
            return self.delivery
        return DeliverySettings.model_validate({**self.delivery.model_dump(), **self.targets[target].delivery})

    @model_validator(mode="after")
    def _targets_named_apart(self) -> Self:
        if DEFAULT_TARGET in self.targets:
            raise ValueError(f"targets.{DEFAULT_TARGET} is the `portal` section; give the target another name")
        return self

    def target_names(self) -> list[str]:
        """Every delivery target: the default (``portal``) first, then ``targets`` in name order."""
        return [DEFAULT_TARGET, *sorted(self.targets)]

    def safe_dump(self) -> dict[str, Any]:
        """A dump for logs and ``rueckkanal config``: secrets masked, paths as text."""
        return self.model_dump(mode="json")
