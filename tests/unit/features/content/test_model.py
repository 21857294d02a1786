"""The vectoriser (pipeline.features.content.model): deterministic, bounded, Unicode-aware."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.items import item_from_dict
from pipeline.features.content.model import (
    MAX_TEXT,
    DocumentFrequencies,
    buckets_of,
    item_text,
    pack,
    term_counts,
    tokens,
    unicode_tokens,
    unpack,
    weigh,
)

FAST = settings(max_examples=300, deadline=None, database=None)

DIM = 256


def vector(text: str, df: DocumentFrequencies | None = None) -> np.ndarray:
    df = df or DocumentFrequencies(DIM)
    buckets, counts = term_counts(text, DIM)
    return weigh(buckets, counts, df)


def test_the_same_text_gives_the_same_bytes() -> None:
    text = "Red running shoe, size 42 — Laufschuh rot"
    assert pack(vector(text)) == pack(vector(text))


def test_buckets_do_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "from pipeline.features.content.model import term_counts;"
        "print(term_counts('red running shoe café 東京 👟', 256)[0].tolist())"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(
        term_counts("red running shoe café 東京 👟", DIM)[0].tolist()
    )


def test_vectors_are_bounded_float32_and_unit_length() -> None:
    huge = "word " * 100_000 + " ".join(f"w{i}" for i in range(50_000))
    for text in ("a", "red shoe", huge):
        found = vector(text)
        assert found.shape == (DIM,) and found.dtype == np.float32
        assert np.linalg.norm(found) == pytest.approx(1.0, abs=1e-6)
        assert len(pack(found)) == 4 * DIM
    # Only the first MAX_TEXT characters count.
    assert len(tokens("ab " * MAX_TEXT)) <= MAX_TEXT // 3 + 1


@pytest.mark.parametrize("text", ["", "   ", "...!?,;", "\n\t"])
def test_text_without_tokens_is_the_zero_vector(text: str) -> None:
    buckets, counts = term_counts(text, DIM)
    assert len(buckets) == 0 and len(counts) == 0
    assert not vector(text).any()


def test_case_accents_and_width_fold() -> None:
    assert tokens("Café CRÈME brûlée") == ["cafe", "creme", "brulee"]
    assert tokens("Ｆｕｌｌ ﬁne") == ["full", "fine"]
    assert pack(vector("Café Crème")) == pack(vector("cafe creme"))


def test_scripts_without_spaces_give_bigrams_and_symbols_are_tokens() -> None:
    assert tokens("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert tokens("京") == ["京"]
    assert tokens("red 👟🔥 shoe") == ["red", "👟", "🔥", "shoe"]
    # Devanagari vowel signs stay in their word (only Latin/Greek/Cyrillic accents go).
    assert tokens("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    # Greek and Cyrillic accents fold like Latin ones.
    assert tokens("Ελλάδα Йод") == ["ελλαδα", "иод"]
    # Texts in different scripts that share a word are similar; unrelated ones are not.
    shared = float(vector("東京 tower 👟") @ vector("東京 station"))
    unrelated = float(vector("東京 tower") @ vector("paris"))
    assert shared > 0.2 and unrelated == 0.0


def test_sublinear_tf_and_idf_weigh_rare_words_up() -> None:
    df = DocumentFrequencies(DIM)
    common, rare = term_counts("shoe", DIM)[0], term_counts("suede", DIM)[0]
    for _ in range(9):
        df.add(common)
    df.add(np.union1d(common, rare))
    found = vector("shoe suede", df)
    assert found[rare[0]] > found[common[0]] > 0
    # Repeating a word raises its weight less than linearly.
    twice = vector("shoe shoe suede", df)
    assert found[common[0]] < twice[common[0]] < 2 * found[common[0]]


def test_document_frequencies_add_and_remove() -> None:
    df = DocumentFrequencies(8)
    df.add(np.array([1, 3]))
    df.add(np.array([3]))
    assert df.documents == 2 and df.counts.tolist() == [0, 1, 0, 2, 0, 0, 0, 0]
    df.add(np.array([1, 3]), -1.0)
    df.add(np.array([1, 3]), -1.0)
    df.add(np.array([1, 3]), -1.0)
    # Never negative, even when asked to forget more than was counted.
    assert df.documents == 0 and df.counts.min() == 0


def test_buckets_of_a_stored_vector_are_its_documents_buckets() -> None:
    buckets, _ = term_counts("one two three two", DIM)
    assert buckets_of(vector("one two three two")).tolist() == buckets.tolist()


def test_pack_round_trips_and_refuses_wrong_sizes_and_non_finite() -> None:
    found = vector("red shoe")
    assert np.array_equal(unpack(pack(found), DIM), found)
    assert unpack(pack(found), 128) is None
    assert unpack(b"\x00" * 3, 1) is None
    assert unpack(np.array([np.nan] * DIM, dtype="<f4").tobytes(), DIM) is None


def test_item_text_reads_the_title_and_named_text_attributes() -> None:
    item = item_from_dict(
        {
            "item_id": "i1",
            "title": "Red shoe",
            "attributes": {"description": "Leather", "tags": ["trail", 3, "run"], "size": 42},
        }
    )
    assert item_text(item, ("title", "description", "tags", "size", "missing")) == (
        "Red shoe Leather trail run"
    )
    assert item_text(item, ()) == ""
    # The description field wins over an attribute of that name (kept for older records).
    both = item_from_dict(
        {"item_id": "i2", "description": "Suede", "attributes": {"description": "Leather"}}
    )
    assert item_text(both, ("title", "description")) == "Suede"


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
@FAST
def test_the_ascii_fast_path_finds_what_the_unicode_path_finds(text: str) -> None:
    assert tokens(text) == unicode_tokens(text)
