"""One package per feature: its pure model, its agent handler, its store reads, its routes.

``registry.py`` lists them; see ``docs/architecture.md`` for what each module may import.
"""
