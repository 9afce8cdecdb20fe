"""Delivery targets: every destination that reads the outbox on its own (settings ``targets``).

The ``portal`` section is the *default* target (adapter ``xoev_http``, named :data:`DEFAULT_TARGET`): it keeps the
consumer group ``{app_id}.delivery`` so that an upgrade of a single-portal deployment delivers nothing again. Every
entry of ``targets`` is one more destination with the consumer group ``{app_id}.delivery.{name}``, its own order,
retries, circuit breaker, receipts and the metric label ``target``::

    targets:
      bundid:
        adapter: zbp
        status_url: https://zbp-gateway.example/zbp/v6/status
        message_url: https://zbp-gateway.example/zbp/v6/message
        signing_key: /var/run/secrets/rueckkanal/zbp/key.pem
        signing_cert: /var/run/secrets/rueckkanal/zbp/cert.pem
      amt24-test:
        adapter: xoev_http
        url: https://test.amt24.example/rueckkanal/v1/nachrichten

Environment: ``RK_TARGETS__BUNDID__ADAPTER=zbp``, ``RK_TARGETS__BUNDID__STATUS_URL=...``. The models
(:class:`~rueckkanal.settings.ZbpSettings`, :class:`~rueckkanal.settings.XoevHttpTargetSettings`: a ``portal``
section plus ``adapter``) live in the core's settings, which validate every setting once at start; the adapters name
them (``adapters/portal/zbp_config.py``). This module holds what the core knows about the targets besides.
"""

from __future__ import annotations

import re

from rueckkanal.settings import DEFAULT_TARGET, TARGET_NAME_PATTERN

__all__ = ["DEFAULT_TARGET", "TARGET_NAME_PATTERN", "ZBP_STATUSES", "is_mailbox_uuid"]

ZBP_STATUSES = ("INITIATED", "SUBMITTED", "RECEIVED", "PROCESSING", "ACTION_REQUIRED", "COMPLETED")
_UUID_TEXT = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def is_mailbox_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in the 8-4-4-4-12 hex form (any version, any case)."""
    return re.fullmatch(_UUID_TEXT, text) is not None
