"""The delivery stage: outbox → portal, in order per Vorgang, concurrent across Vorgänge.

It uses aiokafka directly with manual commits, because faust's own commit logic is not safe when messages
finish out of order (faust-streaming #606). The pieces are small and separately testable:

``offsets``   which offset of a partition may be committed when messages finish out of order
``retry``     backoff with full jitter, Retry-After, and a retry budget by age
``breaker``   the per-portal circuit breaker whose open time does not count against any budget
``scheduler``  per-Vorgang queues, committable offsets, pause and resume, replays for other targets: no I/O
``dispatcher`` the shell on a record log (streams/recordlog.py): fetch loop, senders, portal calls, receipts,
              dead letters, rebalance and shutdown
"""
