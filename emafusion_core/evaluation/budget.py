"""Budget calibration: pick a policy's settings on the calibrate split, report them on test.

For a budget B (USD/query) the chosen knob is the one with the best calibrate accuracy among those whose
calibrate mean cost is <= B. When no knob fits, the cheapest one is taken and flagged (feasible=False).
Test numbers are whatever the chosen knob then does on test: they may exceed B, and are reported as they are.
A sweep over budgets gives the policy's frontier. Nothing in this module reads the test split except
`evaluate_on_test`, which runs once per distinct chosen setting.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from .baselines.base import Policy
from .context import SplitView
from .metrics import aiq
from .replay import Outcome, Scorer


def default_budgets(c_lo: float, c_hi: float, n: int = 25) -> np.ndarray:
    """Log-spaced budgets from the cheapest to the dearest single model's USD/query (on calibrate)."""
    return np.geomspace(c_lo, c_hi, n)


def select_by_budget(costs, accuracies, budgets) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best setting within each budget (ties: cheaper, then earlier) and whether one fitted."""
    costs, acc = np.asarray(costs, float), np.asarray(accuracies, float)
    order = np.lexsort((np.arange(len(costs)), costs, -acc))  # best accuracy, then cheapest, then first
    chosen, feasible = [], []
    for budget in np.atleast_1d(budgets):
        ok = costs[order] <= budget * (1 + 1e-9)
        if ok.any():
            chosen.append(int(order[np.argmax(ok)]))
            feasible.append(True)
        else:
            chosen.append(int(np.lexsort((np.arange(len(costs)), -acc, costs))[0]))
            feasible.append(False)
    return np.asarray(chosen, int), np.asarray(feasible, bool)


@dataclass
class Sweep:
    """Every knob of one hyper setting measured on one split (per-query outcomes kept for later use)."""

    hyper: object
    knobs: list
    outcomes: list[Outcome]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"knob_index": range(len(self.knobs)), "knob": [_label(k) for k in self.knobs],
                             "accuracy": [o.accuracy.mean() for o in self.outcomes],
                             "cost_usd": [o.cost.mean() for o in self.outcomes]})


def _label(knob) -> str:
    if isinstance(knob, float):
        return f"{knob:.6g}"
    return "" if knob is None else str(knob)


def sweep(policy: Policy, view: SplitView, hyper, scorer: Scorer) -> Sweep:
    rows = scorer.rows(view.query_ids)
    pairs = policy.sweep(view, hyper)
    return Sweep(hyper, [k for k, _ in pairs], [scorer.score(None, d, rows=rows) for _, d in pairs])


def choose_hyper(policy: Policy, calibrate: SplitView, scorer: Scorer, c_range: tuple[float, float]) -> Sweep:
    """The hyper setting whose calibrate knob sweep has the best AIQ over c_range (first on ties)."""
    hypers = policy.hypers()
    if len(hypers) == 1:
        return sweep(policy, calibrate, hypers[0], scorer)
    best, best_aiq = None, -np.inf
    metric = partial(aiq, c_min=c_range[0], c_max=c_range[1])
    for hyper in hypers:
        s = sweep(policy, calibrate, hyper, scorer)
        t = s.table()
        value = metric(t["cost_usd"].to_numpy(), t["accuracy"].to_numpy())
        if value > best_aiq:
            best, best_aiq = s, value
    return best


def calibrate_budgets(cal: Sweep, budgets) -> pd.DataFrame:
    """One row per budget: the chosen knob and its calibrate accuracy and cost."""
    t = cal.table()
    idx, feasible = select_by_budget(t["cost_usd"], t["accuracy"], budgets)
    out = t.iloc[idx].rename(columns={"accuracy": "cal_accuracy", "cost_usd": "cal_cost_usd"}).reset_index(drop=True)
    out.insert(0, "budget_usd", np.atleast_1d(budgets).astype(float))
    out["feasible"] = feasible
    return out


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
