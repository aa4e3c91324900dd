"""Splits are disjoint, cover every query, follow 50/20/30 per stratum and never change across runs."""
from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from emafusion_core.data import make_splits, split_ids


def _digest(splits: pd.Series) -> str:
    text = "\n".join(f"{q}:{s}" for q, s in sorted(splits.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_parts_are_disjoint_and_cover_every_query(routerbench, seed):
    splits = make_splits(routerbench.queries, routerbench.name, seed)
    parts = [set(split_ids(splits, p)) for p in ("fit", "calibrate", "test")]
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    assert set.union(*parts) == set(routerbench.queries["query_id"])


def test_fractions_hold_within_each_benchmark(routerbench):
    splits = make_splits(routerbench.queries, "routerbench", 0)
    share = (routerbench.queries.assign(split=splits.to_numpy())
             .groupby("benchmark")["split"].value_counts(normalize=True).unstack())
    assert ((share["fit"] - 0.5).abs() < 0.01).all()
    assert ((share["calibrate"] - 0.2).abs() < 0.01).all()
    assert ((share["test"] - 0.3).abs() < 0.01).all()


def test_split_is_a_pure_function_of_suite_and_seed(routerbench):
    a = make_splits(routerbench.queries, "routerbench", 3)
    shuffled = routerbench.queries.sample(frac=1.0, random_state=7)
    b = make_splits(shuffled, "routerbench", 3)
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())
    assert not make_splits(routerbench.queries, "routerbench", 4).sort_index().equals(a.sort_index())
    assert not make_splits(routerbench.queries, "other-suite", 3).sort_index().equals(a.sort_index())


def test_split_is_stable_across_machines(routerbench, routellm):
    # Golden digests: a change here means every published number moves. Change only on purpose.
    assert _digest(make_splits(routerbench.queries, "routerbench", 0)) == GOLDEN["routerbench/0"]
    assert _digest(make_splits(routellm.queries, "routellm", 1)) == GOLDEN["routellm/1"]


def test_contaminated_queries_never_reach_calibrate_or_test(routellm):
    contaminated = routellm.queries.loc[routellm.queries["contaminated"], "query_id"]
    assert len(contaminated) == 25
    for seed in range(5):
        splits = make_splits(routellm.queries, "routellm", seed)
        assert (splits.loc[contaminated] == "fit").all()


def test_bad_fractions_are_rejected(tiny_suite):
    with pytest.raises(ValueError, match="fractions"):
        make_splits(tiny_suite.queries, "tiny", 0, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="unknown split"):
        split_ids(make_splits(tiny_suite.queries, "tiny", 0), "train")


GOLDEN = {"routerbench/0": "68418ab33caaf75d", "routellm/1": "4b4425a1df56b3f1"}
