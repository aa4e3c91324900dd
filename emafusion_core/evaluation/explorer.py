"""The budget explorer's engine: fit a policy once on one seed, then answer "what does it do at budget B"
(or at thresholds I set by hand) on the test split in milliseconds, for a slider to call on every move.

The knob for a budget is chosen on the calibrate split, exactly as in the harness; a hand-set knob skips
that choice and says so. Test outcomes are cached per knob, so moving back and forth costs nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.suite import Suite
from .baselines.base import Policy
from .budget import calibrate_budgets, choose_hyper, default_budgets
from .harness import Harness
from .replay import Outcome


@dataclass
class ExplorerPoint:
    budget_usd: float | None
    knob: tuple
    chosen_on: str  # "calibrate" (budget) or "hand" (knob set directly)
    accuracy: float
    cost_usd: float
    breakdown: dict  # model / judge / router USD per query
    shares: pd.Series  # share of final answers per model
    taxonomy_share: float
    seconds: float
    setting: dict | None = None  # the knob by name, router included (a hybrid's grid also holds learned-alone points)


class BudgetExplorer:
    def __init__(self, suite: Suite, encoder, policy: Policy, seed: int = 0, n_budgets: int = 25):
        self.suite, self.policy = suite, policy
        self.harness = Harness(suite, encoder, seeds=[seed], policies=lambda s, sc: [policy], n_budgets=n_budgets)
        views = self.harness.views(seed)
        self.fit_view, self.cal, self.test = views["fit"], views["calibrate"], views["test"]
        scorer = self.harness.scorer
        with self.harness.limits():
            policy.fit(self.harness.fit_data(self.fit_view), self.cal)
            single = scorer.costs(self.cal.query_ids).mean(axis=0)
            self.c_range = (float(single.min()), float(single.max()))
            self.sweep = choose_hyper(policy, self.cal, scorer, self.c_range)
        self._rows = scorer.rows(self.test.query_ids)
        self._cache: dict[tuple, Outcome] = {}
        self.budgets = default_budgets(*self.c_range, n_budgets)

    @property
    def knobs(self) -> list:
        return list(self.sweep.knobs)

    def _outcome(self, knob) -> Outcome:
        key = knob if hasattr(knob, "values") and not isinstance(knob, dict) else tuple(np.atleast_1d(knob).tolist())
        if key not in self._cache:
            decision = self.policy.decide(self.test, self.sweep.hyper, knob)
            self._cache[key] = self.harness.scorer.score(None, decision, rows=self._rows)
        return self._cache[key]

    def _point(self, knob, budget, chosen_on, started) -> ExplorerPoint:
        o = self._outcome(knob)
        names = self.suite.model_names
        shares = pd.Series(np.bincount(o.final, minlength=len(names)) / len(o.final), index=names)
        return ExplorerPoint(budget, _values(knob), chosen_on, float(o.accuracy.mean()),
                              float(o.cost.mean()),
                              {"model": float(o.model_cost.mean()), "judge": float(o.judge_cost.mean()),
                               "router": float(o.router_cost.mean())}, shares,
                              float(o.taxonomy_path.mean()) if o.taxonomy_path is not None else float("nan"),
                              time.perf_counter() - started, _setting(knob))

    def at_budget(self, budget_usd: float) -> ExplorerPoint:
        """The knob with the best calibrate accuracy within the budget, measured on test."""
        started = time.perf_counter()
        chosen = calibrate_budgets(self.sweep, [budget_usd]).iloc[0]
        return self._point(self.sweep.knobs[int(chosen["knob_index"])], float(budget_usd), "calibrate", started)

    def at_knob(self, knob) -> ExplorerPoint:
        """A knob set by hand (e.g. tau_c and tau_j sliders): no calibration involved, measured straight on
        test. For exploring only: such a point is test-peeking and never a reported number. Values are read on
        the first knob's dial (a hybrid's: tau_fam, tau_c, lambda, tau_j); an operating point is taken as is."""
        first = self.sweep.knobs[0]
        if hasattr(first, "with_values") and not hasattr(knob, "with_values"):
            knob = first.with_values(knob)  # values for the operating point's dial, e.g. (tau_fam, tau_c, lam, tau_j)
        return self._point(knob, None, "hand", time.perf_counter())

    def frontier(self) -> pd.DataFrame:
        """Test accuracy and cost at every budget of the grid (the curve the explorer's point moves on)."""
        points = [self.at_budget(b) for b in self.budgets]
        return pd.DataFrame({"budget_usd": self.budgets, "accuracy": [p.accuracy for p in points],
                             "cost_usd": [p.cost_usd for p in points]})


def _setting(knob) -> dict:
    """An operating point's router and dial by name; any other knob as its values."""
    if hasattr(knob, "dial"):
        return {"router": knob.router, **dict(zip(knob.dial(), knob.values()))}
    return {"knob": _values(knob)}


def _values(knob) -> tuple:
    """A knob as the tuple of its dial values (an operating point's, or the knob itself)."""
    if hasattr(knob, "values") and callable(knob.values) and not isinstance(knob, dict):
        return knob.values()
    return tuple(np.atleast_1d(knob).tolist())
