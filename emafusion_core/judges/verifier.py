"""Learned verifier: P(answer is right) from the query text and the answer text, one model per LLM.

One logistic regression per LLM (as FrugalGPT trains a scorer per API) on hashed words of the query and
of the answer, plus the answer's length. Stateless hashing keeps it deterministic and needs no
vocabulary. It is trained on the fit split (its labels are the fit split's scores: that is what fitting
is for) and at inference reads text only. Runs locally: 0 USD per call, but every call is counted.
"""
from __future__ import annotations

from typing import Mapping, Sequence  # noqa: F401

import numpy as np
import scipy.sparse as sp

from ..features.hashed_rows import shared_rows
from .base import memo_column


class LearnedVerifier:
    def __init__(self, query_bits: int = 14, answer_bits: int = 12, C: float = 0.5, name: str = "verifier"):
        from sklearn.feature_extraction.text import HashingVectorizer

        kw = dict(alternate_sign=False, norm="l2", token_pattern=r"(?u)\b\w+\b")
        self._q = HashingVectorizer(n_features=2 ** query_bits, **kw)
        self._a = HashingVectorizer(n_features=2 ** answer_bits, **kw)
        self.C, self.name = C, name
        self.model_names: list[str] = []
        self._clfs: dict[int, object] = {}
        self._constant: dict[int, float] = {}
        self.calls = 0

    def query_features(self, query_texts: Sequence[str]):
        """Hashed query words: callers judging many answers to the same queries compute these once."""
        return shared_rows(self._q).transform(query_texts)

    def _features(self, query_features, answers: Sequence[str]) -> sp.csr_matrix:
        length = sp.csr_matrix(np.log1p([[len(a)] for a in answers]) / 10.0)
        return sp.hstack([query_features, shared_rows(self._a).transform(answers), length], format="csr")

    def fit(self, model_names: Sequence[str], query_texts: Sequence[str], answers: Mapping[str, Sequence[str]],
            scores: np.ndarray, seed: int = 0, query_features=None) -> "LearnedVerifier":
        """answers: per model, its answer to each query ('' when none); scores: (n, m) fit-split labels."""
        from sklearn.linear_model import LogisticRegression

        self.model_names = list(model_names)
        scores = np.asarray(scores, float)
        if scores.shape != (len(query_texts), len(self.model_names)):
            raise ValueError(f"scores must be {(len(query_texts), len(self.model_names))}, got {scores.shape}")
        questions = self.query_features(query_texts) if query_features is None else query_features
        observed = ~np.isnan(scores)  # NaN: no labelled outcome (data.training.withhold)
        for j, model in enumerate(self.model_names):
            rows = np.flatnonzero(observed[:, j])
            if not len(rows):  # a model with no label: judged by the pooled classifier below
                continue
            labels = (scores[rows, j] >= 0.5).astype(int)
            if labels.min() == labels.max():  # a model always right (or wrong) on fit: nothing to learn
                self._constant[j] = float(labels[0])
                continue
            clf = LogisticRegression(C=self.C, max_iter=500, solver="liblinear", random_state=seed)
            self._clfs[j] = clf.fit(self._features(questions[rows], [answers[model][i] for i in rows]), labels)
        unlabelled = [j for j in range(len(self.model_names)) if not observed[:, j].any()]
        if unlabelled:
            # a model without one labelled outcome (just added to the pool) is judged by one classifier over
            # every labelled answer of the other models (what an answer that reads right looks like, whoever
            # wrote it), the same for each such model
            rows, cols = np.nonzero(observed)
            labels = (scores[rows, cols] >= 0.5).astype(int)
            if labels.min() == labels.max():
                self._constant.update({j: float(labels[0]) for j in unlabelled})
            else:
                x = sp.vstack([self._features(questions[rows[cols == j]],
                                              [answers[self.model_names[j]][i] for i in rows[cols == j]])
                               for j in np.unique(cols)], format="csr")
                order = np.concatenate([np.flatnonzero(cols == j) for j in np.unique(cols)])
                clf = LogisticRegression(C=self.C, max_iter=500, solver="liblinear", random_state=seed)
                pooled = clf.fit(x, labels[order])
                self._clfs.update({j: pooled for j in unlabelled})
        return self

    def predict(self, model: str, query_features, answers: Sequence[str]) -> np.ndarray:
        """P(right) of `model`'s answers (aligned with the rows of query_features)."""
        if not self.model_names:
            raise RuntimeError("LearnedVerifier used before fit")
        j = self.model_names.index(model)
        if j in self._constant:
            return np.full(len(answers), self._constant[j])
        return self._clfs[j].predict_proba(self._features(query_features, answers))[:, 1]

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        """P(right) of each answer from the query's and the answer's words (one local call per answer, 0 USD).
        Abstains (NaN) on an answer it cannot read or a model it was not fitted for."""
        if not self.model_names:
            raise RuntimeError("LearnedVerifier used before fit")
        rows, models = np.asarray(rows, int), np.asarray(models, int)
        out = np.full(len(rows), np.nan)
        qf = state.batch.cached((self, "query-features"), lambda: self.query_features(state.batch.texts))
        for j in np.unique(models):
            sel = models == j
            name = state.model_names[j]
            if name not in self.model_names:
                continue
            r = rows[sel]
            vals = memo_column(state, (self, "p", name), r,
                               lambda todo: self.predict(name, qf[todo], [t or "" for t in state.text[todo, j]]))
            out[sel] = np.where(state.readable[r, j], vals, np.nan)
        state.charge_judge(rows, 0.0, 1)
        self.calls += len(rows)
        return out
