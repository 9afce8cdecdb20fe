"""Rückkanal core: the event model, the status lifecycle and the XÖV message, with no Kafka and no HTTP.

Dependencies point inward: ``streams`` → ``adapters`` → ``rueckkanal``. Nothing here imports the other two.
"""

__version__ = "0.1.0"
