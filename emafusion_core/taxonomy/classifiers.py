"""Taxonomy classifiers giving p(category | query) per axis, and their fusion.

- FastClassifier: one multinomial logistic regression per axis over query embeddings (the paper's
  "embedding-based" fast classifier; the model choice is ours).
- fuse(): p = lambda * p_slow + (1 - lambda) * p_fast, per query; where the slow classifier abstained
  (its reply did not parse, or it was not run) the fast probabilities are used alone.
Probabilities are dicts axis -> (n_queries, n_categories) arrays in the taxonomy's category order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .schema import AXES, Taxonomy

Probs = dict[str, np.ndarray]


class FastClassifier:
    def __init__(self, taxonomy: Taxonomy, encoder, C: float = 4.0, seed: int = 0):
        self.taxonomy, self.encoder, self.C, self.seed = taxonomy, encoder, C, seed
        self._models: dict = {}

    def fit(self, texts: Sequence[str], labels: pd.DataFrame) -> "FastClassifier":
        return self.fit_embeddings(self.encoder.encode(list(texts)), labels)

    def fit_embeddings(self, x: np.ndarray, labels: pd.DataFrame) -> "FastClassifier":
        """Fit on embeddings already computed with this classifier's encoder (the harness has them)."""
        from sklearn.linear_model import LogisticRegression

        for axis in AXES:
            y = np.array([self.taxonomy.index(axis, c) for c in labels[axis]])
            present = np.unique(y)
            if len(present) == 1:  # a single category seen: the classifier is certain of it
                self._models[axis] = int(present[0])
                continue
            clf = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
            self._models[axis] = clf.fit(x, y)
        return self

    def predict_proba(self, texts: Sequence[str]) -> Probs:
        return self.predict_proba_embeddings(self.encoder.encode(list(texts)))

    def predict_proba_embeddings(self, x: np.ndarray) -> Probs:
        if not self._models:
            raise RuntimeError("FastClassifier.predict_proba called before fit")
        out = {}
        for axis in AXES:
            n_cat = len(self.taxonomy.categories[axis])
            probs = np.zeros((len(x), n_cat))
            model = self._models[axis]
            if isinstance(model, int):
                probs[:, model] = 1.0
            else:
                probs[:, model.classes_] = model.predict_proba(x)
            out[axis] = probs
        return out


def fuse(p_fast: Probs, p_slow: Probs | None, lam: float, slow_ok: np.ndarray | None = None) -> Probs:
    """lambda-weighted mixture of slow and fast probabilities; fast alone where slow abstained."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    if p_slow is None or lam == 0.0:
        return {axis: p.copy() for axis, p in p_fast.items()}
    n = len(next(iter(p_fast.values())))
    ok = np.ones(n, bool) if slow_ok is None else np.asarray(slow_ok, bool)
    weight = np.where(ok, lam, 0.0)[:, None]
    return {axis: weight * p_slow[axis] + (1 - weight) * p_fast[axis] for axis in p_fast}


def confidence(probs: Probs) -> np.ndarray:
    """How sure the classifier is of the whole label: the least confident axis's top probability."""
    return np.min(np.stack([p.max(axis=1) for p in probs.values()]), axis=0)


def top_labels(probs: Probs, taxonomy: Taxonomy) -> pd.DataFrame:
    return pd.DataFrame({axis: np.array(taxonomy.categories[axis])[p.argmax(axis=1)] for axis, p in probs.items()})
