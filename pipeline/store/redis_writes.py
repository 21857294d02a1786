"""How queued writes (``pipeline.store.base.Writes``) become Redis commands: plain
commands, and the arguments of the scripts that apply runs of one kind of write
(``redis_scripts``), with numbers as text Redis reads back as the same doubles."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain
from typing import Any

import numpy as np
import orjson

from pipeline.store.base import Op, Scalar


def numbers(amounts: Collection[float]) -> list[str]:
    """Each amount as text that Redis (and Lua's tonumber) reads back as the same float64:
    orjson's shortest form, many times faster than a repr per float (whether Python or
    hiredis calls it); the non-finite ones, which orjson writes as null, by repr."""
    if not amounts:
        return []
    values = np.fromiter(amounts, dtype=np.float64, count=len(amounts))
    texts = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().split(",")
    finite = np.isfinite(values)
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            texts[i] = repr(float(values[i]))
    return texts


def float_text(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """``mapping`` with its values as :func:`numbers` text when every one is a float
    (hiredis formats a float about five times slower: a click model's batch sets thousands)."""
    values = list(mapping.values())
    if values and all(isinstance(value, float) for value in values):
        return dict(zip(mapping, numbers(values), strict=True))
    return mapping


# Scripted writes whose amounts are the values of ``op[2]``: a run of them has its amounts
# written as text in one conversion (:func:`run_args`).
_INCREMENTS = ("zincr_trim", "hincr_float")


def run_args(run: Sequence[Op]) -> list[list[Scalar]]:
    """:func:`script_args` of each write of a run of one kind. The amounts of a run of
    increments are converted to text together: a worker's batch writes thousands of short
    lists (a related item's partners), and :func:`numbers` per list cost more in its
    setting up than in its numbers."""
    name = run[0][0]
    if name not in _INCREMENTS:
        return [script_args(op) for op in run]
    texts = numbers(list(chain.from_iterable(op[2].values() for op in run)))
    out: list[list[Scalar]] = []
    at = 0
    for op in run:
        increments = op[2]
        size = len(increments)
        if name == "zincr_trim":
            _, _, _, keep, trim_above, expire_at_s = op
            args: list[Scalar] = [keep, trim_above, expire_at_s, size]
        else:
            args = [size]
        pairs: list[Scalar] = [0] * (2 * size)
        pairs[0::2] = increments
        pairs[1::2] = texts[at : at + size]
        at += size
        args += pairs
        out.append(args)
    return out


def script_args(op: Op) -> list[Scalar]:
    """The ARGV part of one scripted write (the scripts of ``redis_scripts.SCRIPTED``)."""
    name = op[0]
    if name == "set":
        _, _, value, ttl_s = op
        return [ttl_s or 0, value]
    if name == "hadd_vectors":
        deltas = op[2]
        vector_args: list[Scalar] = [len(deltas)]
        for field, (delta, base) in deltas.items():
            vector_args += [field, delta, base or b""]
        return vector_args
    if name == "zadd_expire":
        _, _, scores, expire_at_s = op
        members: list[Scalar] = [0] * (2 * len(scores))
        members[0::2] = numbers(scores.values())
        members[1::2] = scores
        return [expire_at_s, len(scores), *members]
    # zincr_trim, hincr_float: a run of one.
    return run_args([op])[0]


def queue_plain(pipe: Any, op: Op) -> None:
    name = op[0]
    if name == "delete":
        pipe.delete(*op[1])
    elif name == "hset":
        # Field, value, field, value...: one list, not redis-py's pass over the mapping's
        # items (a click model's batch sets tens of thousands of fields).
        mapping = float_text(op[2])
        fields: list[Any] = [0] * (2 * len(mapping))
        fields[0::2] = mapping
        fields[1::2] = mapping.values()
        pipe.execute_command("HSET", op[1], *fields)
    elif name == "zadd":
        pipe.zadd(op[1], float_text(op[2]))
    elif name == "sadd":
        pipe.sadd(op[1], *op[2])
    elif name == "expire_at":
        pipe.expireat(op[1], op[2])
    elif name == "srem":
        pipe.srem(op[1], *op[2])
    elif name == "incr":
        pipe.incr(op[1])
    elif name == "zrem":
        pipe.zrem(op[1], *op[2])
    elif name == "ztrim":
        pipe.zremrangebyrank(op[1], 0, -(op[2] + 1))
    elif name == "zrem_by_score":
        pipe.zremrangebyscore(op[1], op[2], op[3])
    else:
        raise ValueError(f"unknown write {name!r}")


def queue_eval(pipe: Any, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Queue a script on a pipeline as EVAL with its source. redis-py's registered scripts
    queue EVALSHA and cost the pipeline a SCRIPT EXISTS round trip before it is sent (a
    transaction cannot meet a missing script halfway); Redis caches the compiled script by
    its hash either way, and sending a few kilobytes of source costs less than the trip."""
    return pipe.execute_command("EVAL", source, len(keys), *keys, *args)
