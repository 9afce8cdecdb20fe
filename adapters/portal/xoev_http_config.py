"""Configuration of the XÖV HTTP portal adapter.

The model itself is :class:`rueckkanal.settings.PortalSettings`, the ``portal`` section of the process settings:
the core cannot import adapters, and the worker validates every setting once at start. This module names it for
the adapter (``PortalHttpConfig``) so that the adapter's spec sits beside it. Environment example::

    RK_PORTAL__URL=https://portal.example/rueckkanal/v1/nachrichten
    RK_PORTAL__NAME=amt24
    RK_PORTAL__AUTH=oauth2
    RK_PORTAL__OAUTH2__TOKEN_URL=https://portal.example/oauth2/token
    RK_PORTAL__OAUTH2__CLIENT_ID=leipzig-rk
    RK_PORTAL__OAUTH2__CLIENT_SECRET=...       (SecretStr: dumps show **********)
    RK_PORTAL__TLS__CA_BUNDLE=/etc/rueckkanal/portal-ca.pem
    RK_PORTAL__TLS__CLIENT_CERT=/etc/rueckkanal/tls/client.pem   (auth=mtls, or with oauth2)
"""

from __future__ import annotations

from rueckkanal.settings import PortalAuth, PortalOAuth2, PortalSettings, PortalTimeouts, PortalTls

PortalHttpConfig = PortalSettings

__all__ = ["PortalAuth", "PortalHttpConfig", "PortalOAuth2", "PortalTimeouts", "PortalTls"]
