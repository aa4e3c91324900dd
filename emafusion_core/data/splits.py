"""Deterministic fit / calibrate / test splits, a pure function of (suite name, seed, query ids).

Why not sklearn's train_test_split: its result depends on row order and on numpy's legacy global
RNG conventions. Here each stratum is ordered by query id and shuffled by a generator seeded from a
SHA-256 of (suite, seed, stratum), so the split is the same on any machine and any row order.
Contaminated queries (on a published contamination list) always go to fit: never calibrate or test.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

SPLITS = ("fit", "calibrate", "test")
DEFAULT_FRACTIONS = (0.5, 0.2, 0.3)  # evaluation.md
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
# Strata smaller than this fall back to the benchmark as a whole (a 3-query category cannot be split 50/20/30).
MIN_STRATUM = 10


def _rng(*parts) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


def _strata(queries: pd.DataFrame) -> pd.Series:
    category = queries["category"] if "category" in queries.columns else pd.Series("", index=queries.index)
    strata = queries["benchmark"].astype(str) + "/" + category.fillna("").astype(str)
    sizes = strata.map(strata.value_counts())
    return strata.where(sizes >= MIN_STRATUM, queries["benchmark"].astype(str) + "/*")


def make_splits(queries: pd.DataFrame, suite: str, seed: int,
                fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> pd.Series:
    """Map each query_id to 'fit', 'calibrate' or 'test', stratified by benchmark and category."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    ids = queries["query_id"].astype(str)
    out = pd.Series("fit", index=pd.Index(ids, name="query_id"), name="split", dtype=object)
    contaminated = (queries["contaminated"].astype(bool) if "contaminated" in queries.columns
                    else pd.Series(False, index=queries.index))
    clean = queries.loc[~contaminated.to_numpy()]
    strata = _strata(clean)
    for stratum in sorted(strata.unique()):
        members = np.sort(clean.loc[strata == stratum, "query_id"].astype(str).to_numpy())
        order = _rng(suite, seed, stratum).permutation(len(members))
        n = len(members)
        n_fit = int(round(fractions[0] * n))
        n_cal = int(round((fractions[0] + fractions[1]) * n)) - n_fit
        shuffled = members[order]
        out.loc[shuffled[n_fit:n_fit + n_cal]] = "calibrate"
        out.loc[shuffled[n_fit + n_cal:]] = "test"
    return out


def split_ids(splits: pd.Series, part: str) -> pd.Index:
    if part not in SPLITS:
        raise ValueError(f"unknown split {part!r}; expected one of {SPLITS}")
    return splits.index[splits.to_numpy() == part]
