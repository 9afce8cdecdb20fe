"""Configuration of the XÖV HTTP portal adapter, next to the adapter (one file per component, spec beside it).

Environment example, when the composition root nests it under ``portal``::

    RK_PORTAL__URL=https://portal.example/rueckkanal/v1/nachrichten
    RK_PORTAL__AUTH=oauth2
    RK_PORTAL__OAUTH2__TOKEN_URL=https://portal.example/oauth2/token
    RK_PORTAL__OAUTH2__CLIENT_ID=leipzig-rk
    RK_PORTAL__OAUTH2__CLIENT_SECRET=...      (or a file in RK_SECRETS_DIR)

Secrets are ``SecretStr``: dumps and reprs show ``**********``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from adapters.portal.oauth2 import ClientAuthMethod


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AuthMode(StrEnum):
    NONE = "none"
    OAUTH2 = "oauth2"
    MTLS = "mtls"


class Timeouts(_Section):
    connect_s: float = Field(5.0, gt=0, description="TCP and TLS connection set-up")
    total_s: float = Field(30.0, gt=0, description="one whole request, connection to last byte of the answer")


class OAuth2Client(_Section):
    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None
    auth_method: ClientAuthMethod = ClientAuthMethod.BASIC
    refresh_margin_s: float = Field(30.0, ge=0, description="refresh this long before the token expires")


class TlsFiles(_Section):
    ca_bundle: Path | None = Field(None, description="PEM file of CAs to trust instead of the system store")
    client_cert: Path | None = Field(None, description="PEM client certificate (mTLS); may contain the key")
    client_key: Path | None = Field(None, description="PEM private key of the client certificate")


class PortalHttpConfig(_Section):
    """One portal reached over HTTP with XÖV messages."""

    name: str = Field("portal", pattern=r"^[a-z0-9_\-]{1,40}$", description="the metric label `portal`")
    url: HttpUrl = Field(description="where messages are POSTed")
    timeouts: Timeouts = Timeouts()
    auth: AuthMode = AuthMode.NONE
    oauth2: OAuth2Client | None = None
    tls: TlsFiles = TlsFiles()
    max_connections: int = Field(100, ge=1, le=10_000, description="connection pool limit")
    max_response_bytes: int = Field(256 * 1024, ge=1024, description="larger answers are not parsed")
    retry_after_cap_s: float = Field(300.0, gt=0, description="upper bound for the portal's Retry-After")

    @model_validator(mode="after")
    def _auth_complete(self) -> Self:
        if self.auth is AuthMode.OAUTH2 and self.oauth2 is None:
            raise ValueError("auth=oauth2 needs the oauth2 section (token_url, client_id, client_secret)")
        if self.auth is AuthMode.MTLS and self.tls.client_cert is None:
            raise ValueError("auth=mtls needs tls.client_cert")
        if self.tls.client_key is not None and self.tls.client_cert is None:
            raise ValueError("tls.client_key without tls.client_cert")
        return self
