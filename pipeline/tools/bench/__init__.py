"""``pipeline bench``: end-to-end benchmarks, each measured against a baseline in the same run.

- ``ingest``: events applied per second by a worker (all groups, and each group alone), one
  event per message and envelopes of 20, against a bare Faust agent that only counts the
  same messages and a raw aiokafka consumer;
- ``freshness``: from an event produced to the reader reflecting it, at a background load;
- ``reader``: requests per second and latency under load from another process, against a
  bare endpoint serving the same list;
- ``memory``: Redis memory after 1M and 3M events on a saturated population;
- ``micro``: the in-process paths (decode, learn, Redis writes, agent batches).

Ratios taken in one run are stable on a noisy machine; absolute figures are not.
"""
