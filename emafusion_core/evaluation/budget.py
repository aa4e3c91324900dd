"""Budget calibration: pick a policy's settings on the calibrate split, report them on test.

For a budget B (USD/query) the chosen knob is the one with the best calibrate accuracy among those whose
calibrate mean cost is <= B. When no knob fits, the cheapest one is taken and flagged (feasible=False).
Test numbers are whatever the chosen knob then does on test: they may exceed B, and are reported as they are.
A sweep over budgets gives the policy's frontier. Nothing in this module reads the test split except
`evaluate_on_test`, which runs once per distinct chosen setting.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..calibration import Sweep, calibrate_budgets, default_budgets, select_by_budget
from ..calibration import choose_hyper as _choose_hyper
from ..calibration import sweep as _sweep
from .baselines.base import Policy
from .context import SplitView
from .replay import Outcome, Scorer

__all__ = ["Sweep", "budget_frontier", "calibrate_budgets", "choose_hyper", "default_budgets", "evaluate_on_test",
           "select_by_budget", "sweep"]


def sweep(policy: Policy, view: SplitView, hyper, scorer: Scorer) -> Sweep:
    rows = scorer.rows(view.query_ids)
    return _sweep(policy, view, hyper, lambda d: scorer.score(None, d, rows=rows))


def choose_hyper(policy: Policy, calibrate: SplitView, scorer: Scorer, c_range: tuple[float, float]) -> Sweep:
    """The hyper setting whose calibrate knob sweep has the best AIQ over c_range (first on ties)."""
    rows = scorer.rows(calibrate.query_ids)
    return _choose_hyper(policy, calibrate, lambda d: scorer.score(None, d, rows=rows), c_range)


def evaluate_on_test(policy: Policy, test: SplitView, cal: Sweep, knob_indices, scorer: Scorer) -> dict[int, Outcome]:
    """Run each distinct chosen setting once on test: the only place test scores are read."""
    rows = scorer.rows(test.query_ids)
    return {int(i): scorer.score(None, policy.decide(test, cal.hyper, cal.knobs[int(i)]), rows=rows)
            for i in sorted(set(np.asarray(knob_indices).tolist()))}


def budget_frontier(policy: Policy, calibrate: SplitView, test: SplitView, scorer: Scorer, budgets,
                    c_range: tuple[float, float]) -> pd.DataFrame:
    """Calibrate hyper and knobs per budget, then report test accuracy and cost per budget."""
    cal = choose_hyper(policy, calibrate, scorer, c_range)
    chosen = calibrate_budgets(cal, budgets)
    outcomes = evaluate_on_test(policy, test, cal, chosen["knob_index"], scorer)
    chosen["accuracy"] = [outcomes[i].accuracy.mean() for i in chosen["knob_index"]]
    chosen["cost_usd"] = [outcomes[i].cost.mean() for i in chosen["knob_index"]]
    chosen["over_budget"] = chosen["cost_usd"] > chosen["budget_usd"]
    return chosen
