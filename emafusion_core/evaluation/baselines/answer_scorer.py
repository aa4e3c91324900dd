"""A learned judge: P(answer is correct) from the query text and the answer text, one model per LLM.

One logistic regression per LLM (as FrugalGPT trains a scorer per API) on hashed words of the query and of the
answer, plus the answer's length. Stateless hashing keeps it deterministic and needs no vocabulary. It reads
text only; its labels come from the fit split's scores, the one place labels are allowed. Runs locally: 0 USD
per call, but every call is counted by the policies that use it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ...execution import Answer, Query
from ..context import SplitView


class AnswerScorer:
    def __init__(self, query_bits: int = 14, answer_bits: int = 12, C: float = 0.5):
        from sklearn.feature_extraction.text import HashingVectorizer

        kw = dict(alternate_sign=False, norm="l2", token_pattern=r"(?u)\b\w+\b")
        self._q = HashingVectorizer(n_features=2 ** query_bits, **kw)
        self._a = HashingVectorizer(n_features=2 ** answer_bits, **kw)
        self.C = C
        self.model_names: list[str] = []
        self._clfs: dict[int, object] = {}
        self._constant: dict[int, float] = {}
        self.calls = 0

    def _features(self, question_features, answers: Sequence[str]) -> sp.csr_matrix:
        length = sp.csr_matrix(np.log1p([[len(a)] for a in answers]) / 10.0)
        return sp.hstack([question_features, self._a.transform(answers), length], format="csr")

    def _question_features(self, view: SplitView):
        return view.cached(("answer-scorer-q", id(self._q)), lambda: self._q.transform(view.texts))

    @staticmethod
    def answer_texts(view: SplitView, model: str) -> list[str]:
        """Every query's recorded answer from `model`, fetched through the view's executor ('' when none)."""
        return [view.executor.run(q, model).response or "" for q in view.queries]

    def fit(self, fit_view: SplitView, scores: np.ndarray, seed: int = 0) -> "AnswerScorer":
        from sklearn.linear_model import LogisticRegression

        self.model_names = list(fit_view.model_names)
        questions = self._question_features(fit_view)
        for j, model in enumerate(self.model_names):
            labels = (scores[:, j] >= 0.5).astype(int)
            if labels.min() == labels.max():
                self._constant[j] = float(labels[0])
                continue
            clf = LogisticRegression(C=self.C, max_iter=500, solver="liblinear", random_state=seed)
            self._clfs[j] = clf.fit(self._features(questions, self.answer_texts(fit_view, model)), labels)
        return self

    def prob_column(self, view: SplitView, j: int) -> np.ndarray:
        """P(correct) of model j's recorded answer on every query of a view, computed once per view."""
        return view.cached(("answer-scorer-p", id(self), j), lambda: self._predict(
            j, self._question_features(view), self.answer_texts(view, self.model_names[j])))

    def prob_matrix(self, view: SplitView, models: Sequence[int] | None = None) -> np.ndarray:
        """(n, m) probability that each listed model's recorded answer is correct; other columns are nan."""
        models = range(len(self.model_names)) if models is None else models
        out = np.full((len(view), len(self.model_names)), np.nan)
        for j in models:
            out[:, j] = self.prob_column(view, j)
        return out

    def prob(self, query: Query, answer: Answer) -> float:
        """One judge call on one answer (the per-query pipeline path)."""
        self.calls += 1
        j = self.model_names.index(answer.model)
        return float(self._predict(j, self._q.transform([query.text]), [answer.response or ""])[0])

    def _predict(self, j: int, question_features, answers: Sequence[str]) -> np.ndarray:
        if j in self._constant:
            return np.full(len(answers), self._constant[j])
        return self._clfs[j].predict_proba(self._features(question_features, answers))[:, 1]
