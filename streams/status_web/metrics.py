"""status-web's Prometheus metrics (prefix ``rueckkanal_status_web_``; labels of low cardinality only)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from rueckkanal.metrics import step_duration_histogram
from rueckkanal.transparency import STEPS

PAGES = ("status", "zahlung", "widerspruch", "girocode", "ics", "barrierefreiheit")
CHANNELS = ("api", "cli", "topic")


class StatusWebMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.views = Counter("rueckkanal_status_web_views_total", "Pages shown, by page", ["page"], registry=registry)
        self.not_found = Counter(
            "rueckkanal_status_web_not_found_total",
            "Requests answered 404: unknown, expired or revoked links and unknown paths (not told apart)",
            registry=registry,
        )
        self.unavailable = Counter(
            "rueckkanal_status_web_unavailable_total",
            "Requests answered 503 because the page could not be built (the database did not answer)",
            registry=registry,
        )
        self.store_errors = Counter(
            "rueckkanal_status_web_store_errors_total",
            "Batches the database did not take, by reader (outbox, delivery_log); each is read again after a pause",
            ["reader"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "rueckkanal_status_web_rate_limited_total", "Requests refused with 429", registry=registry
        )
        self.tokens_minted = Counter(
            "rueckkanal_status_web_tokens_minted_total",
            "Tracking links minted, by channel",
            ["channel"],
            registry=registry,
        )
        self.statuses = Counter(
            "rueckkanal_status_web_statuses_total",
            "Outbox messages read, by outcome (stored, duplicate, skipped)",
            ["outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            "rueckkanal_status_web_lag_seconds",
            "Age of the newest outbox record when its batch was committed to the database",
            registry=registry,
        )
        self.outbox_lag = Gauge(
            "rueckkanal_status_web_outbox_lag_messages",
            "Outbox records behind the newest offset of the partitions this replica reads, at its last fetch",
            registry=registry,
        )
        self.lag_histogram = Histogram(
            "rueckkanal_status_web_store_delay_seconds",
            "Time from an outbox record's timestamp to its database commit",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "rueckkanal_status_web_request_duration_seconds",
            "Public page requests, answer time",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.step_duration = step_duration_histogram(registry)
        self.delivery_log = Counter(
            "rueckkanal_status_web_delivery_log_total",
            "Receipts and dead letters read for the figures, by kind (receipt, dead_letter, skipped)",
            ["kind"],
            registry=registry,
        )
        for reader in ("outbox", "delivery_log"):
            self.store_errors.labels(reader)
        for kind in ("receipt", "dead_letter", "skipped"):
            self.delivery_log.labels(kind)
        for page in PAGES:
            self.views.labels(page)
        for channel in CHANNELS:
            self.tokens_minted.labels(channel)
        for outcome in ("stored", "duplicate", "skipped"):
            self.statuses.labels(outcome)

    def initialise_steps(self, sources: list[str]) -> None:
        """Step duration series for every Fachverfahren, so the dashboard finds them from the start."""
        for source in sources:
            for step in STEPS:
                self.step_duration.labels(source, step.name)
