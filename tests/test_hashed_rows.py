"""The verifier's hashed-text memo gives exactly the rows a fresh hash gives (so no number moves), whatever
the order, repeats and batches of the texts, and stays bounded."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from emafusion_core.features.hashed_rows import HashedRows, shared_rows
from emafusion_core.judges.verifier import LearnedVerifier

KW = dict(alternate_sign=False, norm="l2", token_pattern=r"(?u)\b\w+\b")
TEXTS = ["The answer is 42.", "Paris", "def f(x):\n    return x + 1", "", "the answer is 42", "B) because of heat",
         "Paris"]


def _same(a, b):
    a, b = a.tocsr(), b.tocsr()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)  # bit for bit


def test_rows_equal_a_fresh_transform_across_batches_orders_and_repeats():
    vec = HashingVectorizer(n_features=2 ** 10, **KW)
    memo = HashedRows(vec)
    _same(memo.transform(TEXTS[:3]), vec.transform(TEXTS[:3]))
    later = TEXTS[::-1] + ["new text, never seen", TEXTS[1]]  # old and new texts mixed, in another order
    _same(memo.transform(later), vec.transform(later))
    assert len(memo) == len(set(TEXTS)) + 1  # each distinct text hashed once
    assert memo.transform([]).shape == (0, 2 ** 10)


def test_the_memo_is_bounded_and_starts_afresh_past_its_size():
    vec = HashingVectorizer(n_features=2 ** 8, **KW)
    memo = HashedRows(vec, max_rows=4)
    memo.transform(["a", "b", "c"])
    out = memo.transform(["d", "e", "a"])
    _same(out, vec.transform(["d", "e", "a"]))
    assert len(memo) == 3  # the old rows were dropped, the batch's own kept


def test_vectorizers_with_other_settings_never_share_rows():
    small, large = HashingVectorizer(n_features=2 ** 6, **KW), HashingVectorizer(n_features=2 ** 12, **KW)
    assert shared_rows(small) is not shared_rows(large)
    assert shared_rows(small) is shared_rows(HashingVectorizer(n_features=2 ** 6, **KW))
    _same(shared_rows(large).transform(TEXTS), large.transform(TEXTS))


@pytest.mark.parametrize("warm", [False, True])
def test_a_verifier_predicts_the_same_with_a_cold_or_a_warm_memo(warm):
    rng = np.random.default_rng(0)
    queries = [f"question {i} about {'math' if i % 2 else 'history'}" for i in range(60)]
    answers = {"m": [f"answer {rng.integers(5)} {'right' if i % 3 else 'wrong'}" for i in range(60)]}
    scores = np.array([[float(i % 3 != 0)] for i in range(60)])
    expected = None
    for run in range(2 if warm else 1):
        ver = LearnedVerifier(query_bits=9, answer_bits=8).fit(["m"], queries, answers, scores)
        got = ver.predict("m", ver.query_features(queries), answers["m"])
        expected = got if expected is None else expected
    reference = HashingVectorizer(n_features=2 ** 9, **KW).transform(queries)
    _same(ver.query_features(queries), reference)
    np.testing.assert_array_equal(got, expected)
