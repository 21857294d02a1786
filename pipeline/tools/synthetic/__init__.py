"""Reproducible synthetic events and catalog with planted, learnable structure.

- ``config.py``: every knob (:class:`SyntheticConfig`);
- ``world.py``: users, items, clusters and the catalog (:class:`SyntheticWorld`);
- ``sessions.py``: the event stream;
- :func:`write_jsonl`: records to a JSONL file or stream.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import IO, Any

import orjson

from pipeline.tools.synthetic.config import PROFILES, SyntheticConfig, profile
from pipeline.tools.synthetic.world import ID_PATTERN, SyntheticWorld

__all__ = ["ID_PATTERN", "PROFILES", "SyntheticConfig", "SyntheticWorld", "profile", "write_jsonl"]


def write_jsonl(records: Iterable[dict], path_or_file: str | os.PathLike | IO[Any]) -> int:
    """Write one orjson line per record; return the count.

    A path is created/truncated. A file object is written to and left open: text streams
    (e.g. ``sys.stdout``) get str, anything else bytes.
    """
    if isinstance(path_or_file, str | os.PathLike):
        with open(path_or_file, "wb") as handle:
            return write_jsonl(records, handle)
    text = isinstance(path_or_file, io.TextIOBase)
    written, batch = 0, []
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for record in records:
        batch.append(dumps(record, option=newline))
        written += 1
        if len(batch) == 4096:  # bounded memory for endless streams
            data = b"".join(batch)
            path_or_file.write(data.decode() if text else data)
            batch.clear()
    if batch:
        data = b"".join(batch)
        path_or_file.write(data.decode() if text else data)
    return written
