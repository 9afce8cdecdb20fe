"""The delivery stage: outbox → portal, in order per Vorgang, concurrent across Vorgänge.

It uses aiokafka directly with manual commits, because faust's own commit logic is not safe when messages
finish out of order (faust-streaming #606). The pieces are small and separately testable:

``offsets``   which offset of a partition may be committed when messages finish out of order
``retry``     backoff with full jitter, Retry-After, and a retry budget by age
``breaker``   the per-portal circuit breaker whose open time does not count against any budget
``dispatcher`` the consumer loop, per-key queues, receipts, dead letters, rebalance and shutdown
"""
