"""Learned verifier: predicts from query and answer text whether the answer is right.

Trained on the fit split (its labels are the fit split's scores, which is what fitting is for); at
inference it reads only text. Features: hashed word n-grams of query and answer (kept apart), the
answer's length, and which model answered (a model's identity is known at inference). Runs locally: 0 USD.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ..execution import Answer, Query
from .base import Verdict


class LearnedVerifier:
    def __init__(self, model_names: Sequence[str], n_features: int = 2 ** 16, C: float = 1.0, seed: int = 0,
                 name: str = "verifier"):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.model_names = list(model_names)
        self._q = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2")
        self._a = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2")
        self.C, self.seed, self.name = C, seed, name
        self._clf = None

    def features(self, query_texts: Sequence[str], answer_texts: Sequence[str | None], models: Sequence[str]):
        answers = [a or "" for a in answer_texts]
        onehot = np.zeros((len(models), len(self.model_names)))
        for i, m in enumerate(models):
            if m in self.model_names:
                onehot[i, self.model_names.index(m)] = 1.0
        lengths = np.log1p([[len(a)] for a in answers]) / 10.0
        empty = np.array([[float(not a.strip())] for a in answers])
        return sp.hstack([self._q.transform(query_texts), self._a.transform(answers),
                          sp.csr_matrix(onehot), sp.csr_matrix(lengths), sp.csr_matrix(empty)]).tocsr()

    def fit(self, query_texts, answer_texts, models, labels) -> "LearnedVerifier":
        from sklearn.linear_model import LogisticRegression

        y = (np.asarray(labels, float) >= 0.5).astype(int)
        if len(np.unique(y)) < 2:
            raise ValueError("the verifier needs both right and wrong answers in its training data")
        self._clf = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self._clf.fit(self.features(query_texts, answer_texts, models), y)
        return self

    def predict(self, query_texts, answer_texts, models) -> np.ndarray:
        if self._clf is None:
            raise RuntimeError("LearnedVerifier used before fit")
        return self._clf.predict_proba(self.features(query_texts, answer_texts, models))[:, 1]

    def judge(self, query: Query, answer: Answer, paid: Mapping[str, Answer] | None = None) -> Verdict:
        if not answer.ok:
            return Verdict(self.name, None, detail="no answer to judge")
        p = float(self.predict([query.text], [answer.response], [answer.model])[0])
        return Verdict(self.name, p, 0.0, 0)
