"""The learned verifier (judges.LearnedVerifier) as the harness uses it: fitted on a fit-split view and
queried per view, with every probability column computed once per view so a knob sweep pays for it once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...execution import Answer, Query
from ...judges import LearnedVerifier
from ..context import SplitView


class AnswerScorer:
    def __init__(self, verifier: LearnedVerifier | None = None):
        self.verifier = verifier or LearnedVerifier()

    @property
    def model_names(self) -> list[str]:
        return self.verifier.model_names

    @property
    def calls(self) -> int:
        return self.verifier.calls

    def _question_features(self, view: SplitView):
        return view.cached(("answer-scorer-q", id(self.verifier)), lambda: self.verifier.query_features(view.texts))

    @staticmethod
    def answer_texts(view: SplitView, model: str) -> list[str]:
        """Every query's recorded answer from `model`, fetched through the view's executor ('' when none)."""
        return [view.executor.run(q, model).response or "" for q in view.queries]

    def fit(self, fit_view: SplitView, scores: np.ndarray, seed: int = 0) -> "AnswerScorer":
        answers = {m: self.answer_texts(fit_view, m) for m in fit_view.model_names}
        self.verifier.fit(fit_view.model_names, fit_view.texts, answers, scores, seed=seed,
                          query_features=self._question_features(fit_view))
        return self

    def prob_column(self, view: SplitView, j: int) -> np.ndarray:
        """P(correct) of model j's recorded answer on every query of a view, computed once per view; NaN
        where no answer was recorded (there is nothing to verify: a cascade escalates, as Cascade.run does)."""
        model = self.model_names[j]

        def compute():
            probs = self.verifier.predict(model, self._question_features(view), self.answer_texts(view, model))
            has = np.array([view.executor.run(q, model).ok for q in view.queries], bool)
            return np.where(has, probs, np.nan)

        return view.cached(("answer-scorer-p", id(self.verifier), j), compute)

    def prob_matrix(self, view: SplitView, models: Sequence[int] | None = None) -> np.ndarray:
        """(n, m) probability that each listed model's recorded answer is correct; other columns are nan."""
        models = range(len(self.model_names)) if models is None else models
        out = np.full((len(view), len(self.model_names)), np.nan)
        for j in models:
            out[:, j] = self.prob_column(view, j)
        return out

    def prob(self, query: Query, answer: Answer) -> float:
        """One judge call (the per-query path); NaN when there is no answer to verify."""
        return self.verifier.prob(query, answer) if answer.ok else float("nan")
