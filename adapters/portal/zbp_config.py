"""Configuration of the BundID/ZBP adapter (adapters/portal/zbp.py).

The model is :class:`rueckkanal.settings.ZbpSettings`, one entry of the ``targets`` section (``adapter: zbp``): the
core validates every setting once at start and cannot import adapters, so this module names it beside the adapter.
Environment example, for a target named ``bundid``::

    RK_TARGETS__BUNDID__ADAPTER=zbp
    RK_TARGETS__BUNDID__STATUS_URL=https://zbp-gateway.example/zbp/v6/status
    RK_TARGETS__BUNDID__MESSAGE_URL=https://zbp-gateway.example/zbp/v6/message
    RK_TARGETS__BUNDID__SIGNING_KEY=/var/run/secrets/rueckkanal-zbp/tls.key
    RK_TARGETS__BUNDID__SIGNING_CERT=/var/run/secrets/rueckkanal-zbp/tls.crt
    RK_TARGETS__BUNDID__SENDER_NAME=Stadt Leipzig
    RK_TARGETS__BUNDID__AUTH=oauth2                 (and RK_TARGETS__BUNDID__OAUTH2__*, or mtls with TLS__*)

docs/zbp.md lists every field, its source and its default.
"""

from __future__ import annotations

from rueckkanal.settings import ZbpLimits, ZbpSettings

ZbpConfig = ZbpSettings

__all__ = ["ZbpConfig", "ZbpLimits"]
