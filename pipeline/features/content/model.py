"""Item text to a content vector: hashing TF-IDF with numpy (pure, deterministic).

- :func:`tokens`: Unicode-normalised tokens. Text is NFKC-normalised, case-folded and
  stripped of accents (``Café`` and ``cafe`` are one token); runs of letters and digits are
  words; scripts written without spaces (Han, Hiragana, Katakana, Hangul, Thai) give
  character bigrams; each symbol such as an emoji is a token of its own.
- :func:`term_counts`: tokens hashed into ``dim`` buckets with BLAKE2b (stable across
  processes and Python versions, unlike ``hash()``); no sign trick, so a vector's non-zero
  buckets are exactly its document's buckets.
- :class:`DocumentFrequencies`: per-bucket document frequencies, kept incrementally as items
  arrive, change or leave; the idf is ``log((1 + n) / (1 + df)) + 1``.
- :func:`weigh`: sublinear tf (``1 + log tf``) times idf, L2-normalised, float32.

A vector depends on the text and on the document frequencies when it is computed; vectors
are not recomputed when later items move the idf.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.core.items import Item

# Longest text an item contributes (characters, after joining its fields): bounds the cost.
MAX_TEXT = 8192
# Scripts written without spaces between words: tokens are character bigrams.
_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "IDEOGRAPHIC")


# Accents are dropped from letters below this code point (Latin, Greek, Cyrillic); the marks
# of other scripts (Devanagari, Thai vowel signs) are part of their words.
_ACCENTED_BELOW = 0x0530


@lru_cache(maxsize=4096)
def _unspaced(char: str) -> bool:
    return unicodedata.name(char, "").startswith(_UNSPACED)


def _fold(text: str) -> str:
    """NFKC, case-folded, accents of Latin, Greek and Cyrillic letters removed."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept: list[str] = []
    base = 0
    for char in decomposed:
        if unicodedata.combining(char):
            if base < _ACCENTED_BELOW:
                continue
        else:
            base = ord(char)
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


# ASCII text (the common case) in one regular expression: what :func:`tokens` finds in it.
_ASCII_TOKEN = re.compile(r"[a-z0-9]+|[$+<=>^`|~]")


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` (see the module docstring), in order."""
    text = text[:MAX_TEXT]
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    return unicode_tokens(text)


def unicode_tokens(text: str) -> list[str]:
    """:func:`tokens` of any text, character by character (the ASCII path's reference)."""
    out: list[str] = []
    word: list[str] = []
    run: list[str] = []

    def flush_word() -> None:
        if word:
            out.append("".join(word))
            word.clear()

    def flush_run() -> None:
        if not run:
            return
        if len(run) == 1:
            out.append(run[0])
        out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
        run.clear()

    for char in _fold(text):
        if unicodedata.category(char).startswith("M"):
            # A mark belongs to the letter before it.
            if run:
                run[-1] += char
            elif word:
                word.append(char)
            continue
        if char.isalnum() and _unspaced(char):
            flush_word()
            run.append(char)
            continue
        flush_run()
        if char.isalnum():
            word.append(char)
            continue
        flush_word()
        category = unicodedata.category(char)
        # Symbols (emoji, currency, marks like ™) carry meaning; punctuation and spaces do not.
        if category.startswith("S"):
            out.append(char)
    flush_word()
    flush_run()
    return out


@lru_cache(maxsize=65536)
def bucket(token: str, dim: int) -> int:
    """The bucket of one token: BLAKE2b of its UTF-8 bytes modulo ``dim``."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dim


def term_counts(text: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(buckets, counts) of ``text``: sorted distinct buckets and how many tokens fell in each."""
    found = [bucket(token, dim) for token in tokens(text)]
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    buckets, counts = np.unique(np.asarray(found, dtype=np.int64), return_counts=True)
    return buckets, counts.astype(np.float64)


def item_text(item: Item, fields: Sequence[str]) -> str:
    """The text of an item: each named field in order, ``title`` and ``description`` the
    item's own fields (``description`` falls back to an attribute of that name) and any other
    name an attribute (strings, or lists whose strings are joined); others skipped."""
    parts: list[str] = []
    for name in fields:
        value: Any
        if name == "title":
            value = item.title
        elif name == "description" and item.description is not None:
            value = item.description
        else:
            value = item.attributes.get(name)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(entry for entry in value if isinstance(entry, str))
    return " ".join(parts)[:MAX_TEXT]


class DocumentFrequencies:
    """How many documents hold each bucket, and how many documents there are."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.counts = np.zeros(dim, dtype=np.float64)
        self.documents = 0.0

    def add(self, buckets: np.ndarray, sign: float = 1.0) -> None:
        """Count one document holding ``buckets`` (``sign`` -1: forget one)."""
        self.counts[buckets] += sign
        self.documents += sign
        # A replayed removal never drives a count negative.
        np.maximum(self.counts, 0.0, out=self.counts)
        self.documents = max(self.documents, 0.0)

    def idf(self, buckets: np.ndarray) -> np.ndarray:
        return np.log((1.0 + self.documents) / (1.0 + self.counts[buckets])) + 1.0

    def load(self, counts: Iterable[tuple[int, float]], documents: float) -> None:
        self.counts[:] = 0.0
        for index, count in counts:
            if 0 <= index < self.dim:
                self.counts[index] = max(count, 0.0)
        self.documents = max(documents, 0.0)


def weigh(buckets: np.ndarray, counts: np.ndarray, df: DocumentFrequencies) -> np.ndarray:
    """The L2-normalised float32 vector of one document (all zeros for no tokens)."""
    vector = np.zeros(df.dim, dtype=np.float32)
    if len(buckets) == 0:
        return vector
    weights = (1.0 + np.log(counts)) * df.idf(buckets)
    vector[buckets] = weights / np.linalg.norm(weights)
    return vector


def buckets_of(vector: np.ndarray) -> np.ndarray:
    """The buckets a stored vector's document holds (its non-zero entries)."""
    return np.flatnonzero(vector)


def pack(vector: np.ndarray) -> bytes:
    """The stored form: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack(raw: bytes, dim: int) -> np.ndarray | None:
    """A stored vector, or None when it is not ``dim`` float32 values (or not finite)."""
    if len(raw) != 4 * dim:
        return None
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return vector if bool(np.isfinite(vector).all()) else None
