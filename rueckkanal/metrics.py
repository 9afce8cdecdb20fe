"""Every Prometheus metric Rückkanal exports, defined once.

Names follow Prometheus conventions (prefix ``rueckkanal_``, base units, ``_total`` for counters, ``_seconds``
for durations). Labels are of low cardinality only: source (a Fachverfahren name), target (a delivery target of the
settings, ``default`` for ``portal``), portal, stage, reason, outcome, result, field. A Vorgang id is never a label.
Series of the ingest stages carry ``target=""``, which Prometheus treats as no label.

Label values that are known in advance are initialised at start (:func:`initialise`), so that a dashboard
panel or an alert finds a series with value 0 instead of no series at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info

from rueckkanal import __version__
from rueckkanal.errors import Reason

# Latency buckets from 5 ms to 2 min: portal calls are tens of ms, end-to-end under retries can be minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

STAGES = ("ingest", "lifecycle", "delivery")
INGEST_STAGES = ("ingest", "lifecycle")
DELIVERY_OUTCOMES = ("delivered", "duplicate", "dead_lettered")
ATTEMPT_RESULTS = ("success", "transient", "permanent")
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
# Reasons an event can be refused with at ingest (the delivery stage's portal_* reasons never apply there).
INGEST_REASONS = tuple(r for r in Reason if not r.value.startswith(("portal_", "zbp_")))
LIFECYCLE_WARNINGS = (Reason.STALE_EVENT, Reason.ILLEGAL_TRANSITION)
# The ZBP texts with a length limit (adapters/portal/zbp_payload.py): the label `field` of zbp_fields_shortened.
ZBP_FIELDS = (
    "publicServiceName",
    "senderName",
    "statusDetails",
    "additionalInformation",
    "reference",
    "sender",
    "title",
    "service",
    "messageReference",
)


# Step durations of Vorgänge (rueckkanal/transparency.py): hours to a year.
STEP_BUCKETS = tuple(float(d * 86_400) for d in (0.125, 0.5, 1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 180, 365))


def step_duration_histogram(registry: CollectorRegistry) -> Histogram:
    """``rueckkanal_step_duration_seconds{source, step}``: observed by status-web when a Vorgang completes a step
    (its figures' rules), so the dashboard shows the same steps as the report, live."""
    return Histogram(
        "rueckkanal_step_duration_seconds",
        "Time a Vorgang took for a step (e.g. received to decided), by Fachverfahren, when the step completed",
        ["source", "step"],
        buckets=STEP_BUCKETS,
        registry=registry,
    )


class Metrics:
    """The metric objects of one registry; one instance per process (tests may build their own registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.build_info = Info("rueckkanal_build", "Version of the running Rückkanal", registry=registry)
        self.build_info.info({"version": __version__})

        # ingest
        self.events_consumed = Counter(
            "rueckkanal_events_consumed_total",
            "Source events read from Fachverfahren topics",
            ["source"],
            registry=registry,
        )
        self.events_rejected = Counter(
            "rueckkanal_events_rejected_total",
            "Events refused by ingest, by reason code",
            ["source", "reason"],
            registry=registry,
        )
        self.events_duplicate = Counter(
            "rueckkanal_events_duplicate_total",
            "Events already seen for their Vorgang (dropped)",
            ["source"],
            registry=registry,
        )
        self.events_rerouted = Counter(
            "rueckkanal_events_rerouted_total",
            "Source events that took the extra hop through rueckkanal.events (not co-partitioned with the Table)",
            ["source"],
            registry=registry,
        )
        self.pipeline_headers_stripped = Counter(
            "rueckkanal_inbound_pipeline_headers_stripped_total",
            "Headers in the pipeline's own namespace (rk.*) removed from Fachverfahren records at ingest",
            ["source"],
            registry=registry,
        )
        self.traceparent_dropped = Counter(
            "rueckkanal_traceparent_dropped_total",
            "traceparent headers dropped because they are not valid W3C Trace Context",
            ["stage"],
            registry=registry,
        )
        self.lifecycle_warnings = Counter(
            "rueckkanal_lifecycle_warnings_total",
            "Events delivered despite a lifecycle violation (policy warn)",
            ["source", "reason"],
            registry=registry,
        )
        self.lifecycle_state_expired = Counter(
            "rueckkanal_lifecycle_state_expired_total",
            "Closed Vorgänge removed from the lifecycle state after the retention (settings state.retention_days)",
            registry=registry,
        )
        self.messages_rendered = Counter(
            "rueckkanal_messages_rendered_total",
            "XÖV messages rendered, validated and written to the outbox",
            ["source"],
            registry=registry,
        )
        self.ingest_duration = Histogram(
            "rueckkanal_ingest_duration_seconds",
            "Time to process one event in a stage, without Kafka I/O",
            ["stage"],
            buckets=_FAST_BUCKETS,
            registry=registry,
        )

        # dead letters, all stages
        self.dead_letters = Counter(
            "rueckkanal_dead_letters_total",
            "Records written to the dead-letter topic (target: the delivery target, empty for ingest)",
            ["stage", "reason", "target"],
            registry=registry,
        )
        self.dead_letter_stubs = Counter(
            "rueckkanal_dead_letter_stubs_total",
            "Dead letters written as a stub (size and SHA-256, no value): too large to copy",
            ["stage"],
            registry=registry,
        )

        # delivery
        self.deliveries = Counter(
            "rueckkanal_deliveries_total",
            "Outbox messages finished, by outcome",
            ["target", "portal", "outcome"],
            registry=registry,
        )
        self.delivery_attempts = Counter(
            "rueckkanal_delivery_attempts_total",
            "Portal calls, by result class",
            ["target", "portal", "result"],
            registry=registry,
        )
        self.delivery_duration = Histogram(
            "rueckkanal_delivery_duration_seconds",
            "Duration of one portal call",
            ["target", "portal"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "rueckkanal_end_to_end_latency_seconds",
            "From the event's status time to the portal's receipt",
            ["target", "portal"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "rueckkanal_delivery_in_flight",
            "Messages read from the outbox and not yet finished",
            ["target", "portal"],
            registry=registry,
        )
        self.circuit_state = Gauge(
            "rueckkanal_circuit_state",
            "Circuit breaker per portal: 0 closed, 1 half-open, 2 open",
            ["target", "portal"],
            registry=registry,
        )
        self.oldest_undelivered_age = Gauge(
            "rueckkanal_oldest_undelivered_age_seconds",
            "Age of the oldest outbox message not yet finished",
            ["target", "portal"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "rueckkanal_consumer_lag_messages",
            "Records behind the end of the topic, summed over partitions (target: delivery only)",
            ["stage", "target"],
            registry=registry,
        )
        self.source_transaction_held = Gauge(
            "rueckkanal_source_transaction_held_messages",
            "Records of a Fachverfahren's topic not readable yet because an open transaction precedes them (high "
            "watermark minus last stable offset), summed over this worker's partitions",
            ["source"],
            registry=registry,
        )
        self.source_transaction_open = Gauge(
            "rueckkanal_source_transaction_open_seconds",
            "How long a Fachverfahren's last stable offset has stood still with records behind it (the oldest open "
            "transaction holding a partition back), longest over this worker's partitions; 0 when none",
            ["source"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "rueckkanal_assigned_partitions",
            "Partitions this worker currently owns (target: delivery only)",
            ["stage", "target"],
            registry=registry,
        )
        self.zbp_fields_shortened = Counter(
            "rueckkanal_zbp_fields_shortened_total",
            "ZBP texts shortened to their limit (at a word boundary, with an ellipsis)",
            ["target", "field"],
            registry=registry,
        )
        self.zbp_certificate_expiry = Gauge(
            "rueckkanal_zbp_signing_certificate_expiry_timestamp_seconds",
            "When the certificate that signs a ZBP target's envelopes expires (Unix time), read at every scrape",
            ["target"],
            registry=registry,
        )

    def initialise(self, sources: Iterable[str], targets: Mapping[str, str], zbp_targets: Iterable[str] = ()) -> None:
        """Create the series whose label values are known, so that they are scraped as 0 from the start.

        ``targets`` maps each delivery target this process runs to its portal name (the label ``portal``);
        ``zbp_targets`` are those of them with the ZBP adapter.
        """
        for target in zbp_targets:
            for name in ZBP_FIELDS:
                self.zbp_fields_shortened.labels(target, name)
        for source in sources:
            self.events_consumed.labels(source)
            self.events_duplicate.labels(source)
            self.events_rerouted.labels(source)
            self.pipeline_headers_stripped.labels(source)
            self.messages_rendered.labels(source)
            self.source_transaction_held.labels(source)
            self.source_transaction_open.labels(source)
            for reason in INGEST_REASONS:
                self.events_rejected.labels(source, reason.value)
            for reason in LIFECYCLE_WARNINGS:
                self.lifecycle_warnings.labels(source, reason.value)
        for stage in STAGES:
            self.ingest_duration.labels(stage)
            self.traceparent_dropped.labels(stage)
            self.dead_letter_stubs.labels(stage)
        for stage in INGEST_STAGES:
            self.consumer_lag.labels(stage, "")
            self.assigned_partitions.labels(stage, "")
            for reason in INGEST_REASONS:
                self.dead_letters.labels(stage, reason.value, "")
        for target, portal in targets.items():
            self.consumer_lag.labels("delivery", target)
            self.assigned_partitions.labels("delivery", target)
            for reason in Reason:
                self.dead_letters.labels("delivery", reason.value, target)
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(target, portal, outcome)
            for result in ATTEMPT_RESULTS:
                self.delivery_attempts.labels(target, portal, result)
            self.delivery_duration.labels(target, portal)
            self.end_to_end_latency.labels(target, portal)
            self.in_flight.labels(target, portal)
            self.circuit_state.labels(target, portal)
            self.oldest_undelivered_age.labels(target, portal)
