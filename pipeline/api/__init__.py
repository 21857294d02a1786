"""The HTTP services: shared pieces (``http``, ``deps``), the reader and the collector.

The reader mounts the routers of the registered features; neither service imports agents.
"""
