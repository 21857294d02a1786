"""The contracts every other package builds on: ids, events, items, the feedback rule, decay
maths, settings, the Redis key schema and the topics file.

Nothing here imports faust, redis, FastAPI or another ``pipeline`` package.
"""
