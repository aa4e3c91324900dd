"""Encoders give stable vectors; the disk cache serves repeats without re-encoding."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core.features import CachedEncoder, EmbeddingStore, HashingEncoder, MiniLMEncoder, TfidfEncoder

TEXTS = ["What is the capital of France?", "Write a function that reverses a list.",
         "Solve 3x + 5 = 11 for x.", "What is the capital of France?"]


class CountingEncoder:
    """Wraps an encoder and counts the texts it was asked to encode."""

    def __init__(self, inner):
        self.inner, self.encoder_id, self.dim, self.calls = inner, inner.encoder_id, inner.dim, []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_cache_serves_repeats_from_disk_across_instances(tmp_path):
    store = EmbeddingStore(tmp_path)
    first = CountingEncoder(HashingEncoder(64))
    a = CachedEncoder(first, store).encode(TEXTS)
    assert sum(len(c) for c in first.calls) == 3  # the duplicate text is encoded once
    second = CountingEncoder(HashingEncoder(64))
    b = CachedEncoder(second, store).encode(TEXTS + ["A new text about oceans."])
    assert second.calls == [["A new text about oceans."]]
    np.testing.assert_array_equal(a, b[:4])
    np.testing.assert_array_equal(a[0], a[3])


def test_cache_is_keyed_by_encoder_id(tmp_path):
    store = EmbeddingStore(tmp_path)
    CachedEncoder(HashingEncoder(64), store).encode(TEXTS)
    other = CountingEncoder(HashingEncoder(32))
    out = CachedEncoder(other, store).encode(TEXTS)
    assert out.shape == (4, 32) and sum(len(c) for c in other.calls) == 3


def test_half_written_shard_is_never_visible(tmp_path):
    store = EmbeddingStore(tmp_path)
    CachedEncoder(HashingEncoder(16), store).encode(TEXTS[:1])
    (store._folder("hashing-16") / "leftover.tmp").write_bytes(b"garbage from a killed run")
    assert len(store.load("hashing-16")) == 1


def test_tfidf_encoder_is_deterministic_and_normalised():
    corpus = [f"question {i} about topic {i % 7} and more words" for i in range(50)]
    a = TfidfEncoder(corpus, dim=16).encode(corpus[:5])
    b = TfidfEncoder(corpus, dim=16).encode(corpus[:5])
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert TfidfEncoder(corpus, dim=16).encoder_id != TfidfEncoder(corpus[:40], dim=16).encoder_id


def test_empty_input_gives_empty_matrix(tmp_path):
    assert CachedEncoder(HashingEncoder(8), EmbeddingStore(tmp_path)).encode([]).shape == (0, 8)


@pytest.mark.slow
def test_minilm_loads_offline_and_separates_topics():
    enc = MiniLMEncoder()
    vectors = enc.encode(["How do I sort a list in Python?", "Python list sorting",
                          "The French revolution began in 1789."])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_read_only_store_serves_shipped_vectors_and_new_ones_go_to_the_cache(tmp_path):
    shipped = EmbeddingStore(tmp_path / "shipped")
    CachedEncoder(HashingEncoder(16), shipped).encode(TEXTS[:2])
    store = EmbeddingStore(tmp_path / "cache", read_only=[tmp_path / "shipped"])
    counting = CountingEncoder(HashingEncoder(16))
    CachedEncoder(counting, store).encode(TEXTS)
    assert counting.calls == [[TEXTS[2]]]  # the two shipped texts were not re-encoded
    assert len(list((tmp_path / "shipped").rglob("shard-*"))) == 1  # nothing written to the shipped store


def test_shipped_embeddings_cover_every_shipped_query(routerbench, routellm):
    from emafusion_core.features import default_encoder

    enc = default_encoder()
    enc.encode(routerbench.queries["question"].tolist()[:50] + routellm.queries["question"].tolist()[-50:])
    assert enc.misses == 0 and enc.encoder._model is None  # MiniLM never loaded: all from data/embeddings


def test_named_shards_are_one_file_each_and_load_together(tmp_path):
    store = EmbeddingStore(tmp_path)
    enc = HashingEncoder(16)
    a = store.write_shard(enc.encoder_id, "suite-a", ["k2", "k1"], enc.encode(["two", "one"]))
    before = a.read_bytes()
    store.write_shard(enc.encoder_id, "suite-b", ["k3"], enc.encode(["three"]))
    assert a.read_bytes() == before  # adding a suite never rewrites another suite's shard
    assert set(store.load(enc.encoder_id)) == {"k1", "k2", "k3"}
    assert set(store.read_shard(enc.encoder_id, "suite-a")) == {"k1", "k2"}
    np.testing.assert_array_equal(store.read_shard(enc.encoder_id, "suite-a")["k1"], enc.encode(["one"])[0])


def test_encode_threads_follow_the_free_cores(monkeypatch):
    from emafusion_core.features import encoders

    monkeypatch.delenv("EMAFUSION_TORCH_THREADS", raising=False)
    monkeypatch.setattr(encoders.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(encoders.os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert encoders.encode_threads() == 2  # idle: every core
    monkeypatch.setattr(encoders.os, "getloadavg", lambda: (6.2, 0.0, 0.0))
    assert encoders.encode_threads() == 1  # oversubscribed: two threads would wait on each other
    assert encoders.encode_threads(2) == 2
    monkeypatch.setenv("EMAFUSION_TORCH_THREADS", "3")
    assert encoders.encode_threads() == 3
