"""The running system: the faust app, its agents and services, the web views and the CLI.

This is the composition root, the one place that wires the core, the adapters and Kafka together.
"""
