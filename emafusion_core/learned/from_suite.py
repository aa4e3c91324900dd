"""Fit a LearnedRouter on one split of a Suite: fit-split scores and mean costs, calibrate for stopping.

Kept apart from the router so the router itself knows nothing of suites or splits; this is the only
place that reads scores, and only those of the fit and calibrate queries.
"""
from __future__ import annotations

import pandas as pd

from ..data import Suite, split_ids
from ..features import Encoder
from .router import LearnedRouter


def fit_mean_costs(suite: Suite, fit_ids) -> pd.Series:
    """Expected USD per query of each model: its mean recorded cost over the fit queries."""
    return suite.costs.loc[list(fit_ids)].mean()


def fit_on_suite(suite: Suite, splits: pd.Series, encoder: Encoder, fit_extra=None, cal_extra=None,
                 **router_options) -> LearnedRouter:
    """A LearnedRouter over suite.model_names trained on the 'fit' split, early-stopped on 'calibrate'."""
    fit_ids, cal_ids = split_ids(splits, "fit"), split_ids(splits, "calibrate")
    questions = suite.queries.set_index("query_id")["question"]
    router = LearnedRouter(encoder, suite.model_names, fit_mean_costs(suite, fit_ids), **router_options)
    return router.fit(questions.loc[fit_ids].tolist(), suite.scores.loc[fit_ids],
                      questions.loc[cal_ids].tolist(), suite.scores.loc[cal_ids], fit_extra, cal_extra)
