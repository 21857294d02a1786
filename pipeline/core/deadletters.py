"""The dead-letter contract: one bounded record per rejected message, and how to read it back.

A dead letter says where a message came from (topic, partition, offset), which agent groups
refused it and why (every rejected element of an envelope, the first
:data:`MAX_LISTED_REJECTIONS` listed), and what it was: the whole original when it is at
most ``max_value_bytes`` long (``value``, or ``value_base64`` when not UTF-8), else its first
``max_value_bytes`` bytes (``value_prefix`` or ``value_prefix_base64``). ``size`` and
``sha256`` of the original are always there.

Every field is capped, so a dead letter is never longer than :func:`dead_letter_bound`
bytes whatever the input: at most ~113 KB with the default 4 KiB, ~482 KB with the largest
allowed limit (64 KiB), always below the 1 MB that Kafka producers and brokers accept by
default. Sending one therefore cannot fail for its size (issue: an 800 KB message of 0xff
bytes made a 1.07 MB dead letter that no broker took, and stopped the worker on every start).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.core.events import Rejection

# Default and upper bound of the setting ``dead_letter_max_value_bytes``.
DEAD_LETTER_VALUE_BYTES = 4096
MAX_DEAD_LETTER_VALUE_BYTES = 65_536
# Rejections listed one by one; the rest are only counted (``rejected``).
MAX_LISTED_REJECTIONS = 100
# Characters kept of one reason, of the topic and of the agent names.
MAX_REASON_CHARS = 200
MAX_NAME_CHARS = 256
# A source key up to this size is the dead letter's key; a longer one is replaced by its hash.
MAX_KEY_BYTES = 1024
# Requests a Kafka producer sends by default at most (aiokafka, Faust, librdkafka: ~1 MB).
KAFKA_DEFAULT_MAX_REQUEST = 1_000_000

# JSON bytes per character at worst once control characters are replaced: a 4-byte UTF-8
# character, or an escaped quote or backslash (2 bytes). Raw values (not sanitised) may hold
# control characters, which JSON escapes to 6 bytes (\u0000).
_SANITISED_CHAR_BYTES = 4
_RAW_CHAR_BYTES = 6
# Field names, numbers, punctuation of the record and of one listed rejection, generously.
_FIXED_BYTES = 1024
_PER_REJECTION_BYTES = 48


def dead_letter_bound(max_value_bytes: int) -> int:
    """The most bytes a dead letter built with ``max_value_bytes`` can take (value only)."""
    value = max(_RAW_CHAR_BYTES * max_value_bytes, 4 * (max_value_bytes + 2) // 3)
    reason = _SANITISED_CHAR_BYTES * MAX_REASON_CHARS
    names = 2 * _SANITISED_CHAR_BYTES * MAX_NAME_CHARS
    # The first reason also stands alone in ``reason`` (the format before lists existed).
    listed = MAX_LISTED_REJECTIONS * (reason + _PER_REJECTION_BYTES)
    return _FIXED_BYTES + value + names + reason + listed


def _clean(text: str, limit: int) -> str:
    """At most ``limit`` characters, control characters and lone surrogates as ``?``."""
    text = text[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join("?" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)


def _text_or_base64(raw: bytes, text_field: str) -> dict[str, str]:
    try:
        return {text_field: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{text_field}_base64": base64.b64encode(raw).decode("ascii")}


def _prefix(raw: bytes, length: int) -> dict[str, str]:
    """The first ``length`` bytes; as text when only a character cut at the end breaks UTF-8."""
    head = raw[:length]
    for cut in range(4):
        try:
            return {"value_prefix": head[: len(head) - cut].decode("utf-8")}
        except UnicodeDecodeError:
            continue
    return {"value_prefix_base64": base64.b64encode(head).decode("ascii")}


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's Kafka key: the source key, or its sha256 (hex) when over 1 KiB."""
    if key is None or len(key) <= MAX_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode("ascii")


def build_dead_letter(
    value: bytes | None,
    key: bytes | None,
    rejections: Sequence[Rejection],
    agent: str,
    topic: str,
    partition: int,
    offset: int,
    rejected_at_ms: int,
    max_value_bytes: int = DEAD_LETTER_VALUE_BYTES,
) -> bytes:
    """One message's dead letter (JSON), at most :func:`dead_letter_bound` bytes long."""
    if not rejections:
        raise ValueError("a dead letter needs at least one rejection")
    listed = [
        {"index": r.index, "reason": _clean(r.reason, MAX_REASON_CHARS)}
        for r in rejections[:MAX_LISTED_REJECTIONS]
    ]
    record: dict[str, Any] = {
        # The first rejection on its own, as dead letters carried it before lists.
        "reason": listed[0]["reason"],
        "index": listed[0]["index"],
        "reasons": listed,
        "rejected": len(rejections),
        "agent": _clean(agent, MAX_NAME_CHARS),
        "topic": _clean(topic, MAX_NAME_CHARS),
        "partition": int(partition),
        "offset": int(offset),
        "rejected_at": int(rejected_at_ms),
    }
    if key is not None and len(key) > MAX_KEY_BYTES:
        # The dead letter is keyed by the hash (dead_letter_key): replay cannot restore it.
        record["key_size"] = len(key)
    if value is None:
        record["value"] = None
        return orjson.dumps(record)
    record["size"] = len(value)
    record["sha256"] = hashlib.sha256(value).hexdigest()
    if len(value) <= max_value_bytes:
        record.update(_text_or_base64(value, "value"))
    else:
        record.update(_prefix(value, max_value_bytes))
    return orjson.dumps(record)


@dataclass(frozen=True, slots=True)
class Original:
    """What a dead letter says about the message it replaces (see :func:`original_of`)."""

    #: The whole original value, or None when the dead letter keeps only a prefix (or the
    #: message had no value, or its key is lost): such a letter cannot be replayed.
    value: bytes | None
    #: Why ``value`` is None, else "".
    missing: str = ""


def original_of(record: dict[str, Any]) -> Original:
    """The original value a dead letter holds, when it holds all of it."""
    if "key_size" in record:
        return Original(None, "key longer than 1 KiB (only its hash is kept)")
    if "value_base64" in record:
        return Original(base64.b64decode(record["value_base64"]))
    text = record.get("value")
    if isinstance(text, str):
        return Original(text.encode("utf-8"))
    if "value_prefix" in record or "value_prefix_base64" in record:
        return Original(None, "only a prefix kept (the message was over the value limit)")
    return Original(None, "the message had no value")
