"""Replay: the harness's scorer over recorded outcomes, and where the replay executor lives.

The split of knowledge is the point of this module. A ReplayExecutor (execution.py) holds responses and costs
only (it never receives the score column), so a policy that asks it for answers cannot learn a score by any
route. The Scorer is the only object that holds scores; the harness owns it and policies never get one.
A call the outcome table records as failed (error_kind set, score empty) is a paid-for failure: it scores 0
when returned, and the oracle never picks it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.suite import Suite
from ..data.training import queries_of
from ..execution import ReplayExecutor
from ..results import Decision, Outcome, grade

__all__ = ["Decision", "Outcome", "ReplayExecutor", "Scorer", "queries_of"]




class Scorer:
    """The only reader of the score column: turns Decisions into per-query accuracy and cost.

    Holds the score and cost matrices of the whole suite; rows are looked up by query id."""

    def __init__(self, suite: Suite):
        self.model_names = list(suite.model_names)
        self._row = pd.Series(np.arange(len(suite.query_ids)), index=suite.query_ids)
        self._failed = suite.failed.to_numpy(bool)
        self._scores = np.where(self._failed, 0.0, suite.scores.to_numpy(float))
        self._costs = suite.costs.to_numpy(float)

    def rows(self, query_ids) -> np.ndarray:
        return self._row.loc[list(query_ids)].to_numpy()

    def scores(self, query_ids) -> np.ndarray:
        """(n, m) scores (a failed call counts 0): for training labels on the fit split and for the oracle,
        never for a policy's decide."""
        return self._scores[self.rows(query_ids)]

    def costs(self, query_ids) -> np.ndarray:
        return self._costs[self.rows(query_ids)]

    def failed(self, query_ids) -> np.ndarray:
        return self._failed[self.rows(query_ids)]

    def score(self, query_ids, decision: Decision, rows: np.ndarray | None = None) -> Outcome:
        """Per-query outcome of a decision: accuracy of the final answer, cost of every model run plus judges."""
        rows = self.rows(query_ids) if rows is None else rows
        return grade(decision, self._scores[rows], self._costs[rows], self._failed[rows])
