"""State storage: the store interface (``base``), Redis (``redis``) and in-memory (``memory``).

Imported by agents, read functions and the HTTP services alike; imports only ``pipeline.core``.
"""

from pipeline.store.base import Reads, Store, TransactionConflict, Writes

__all__ = ["Reads", "Store", "TransactionConflict", "Writes"]
