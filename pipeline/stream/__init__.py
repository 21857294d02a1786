"""The agent side: the handler contract, the batch loop with its offset fences and dead
letters, Kafka clients, and the Faust app built from the feature registry.

Imports ``pipeline.core``, ``pipeline.store`` and (for the app) ``pipeline.features``; never
HTTP code.
"""
