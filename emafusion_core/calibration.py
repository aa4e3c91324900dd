"""Choosing settings on the calibrate split: a knob sweep per structural choice, the structural choice by AIQ,
then per budget the knob with the best calibrate accuracy within it.

Core (not evaluation/) because the method calibrates itself with it (EMAFusion.calibrate) and the harness
calibrates every baseline with it: one implementation. It never sees a score matrix: callers pass a `grade`
function (decision -> Outcome) bound to the calibrate labels.

For a budget B (USD/query) the chosen knob is the one with the best calibrate accuracy among those whose
calibrate mean cost is <= B. When no knob fits, the cheapest one is taken and flagged (feasible=False).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .frontier import aiq, cost_range_too_narrow
from .results import Decision, Outcome

Grade = Callable[[Decision], Outcome]


def default_budgets(c_lo: float, c_hi: float, n: int = 25) -> np.ndarray:
    """Log-spaced budgets from the cheapest to the dearest single model's USD/query (on calibrate).

    A range too narrow for a budget axis (`cost_range_too_narrow`: equal prices) gives one budget, the dearest
    cost: the policy is then chosen on accuracy alone. A free cheapest model (cost 0) starts the axis at 1/1000
    of the dearest cost (a log axis cannot start at 0)."""
    if cost_range_too_narrow(c_lo, c_hi):
        return np.array([max(float(c_hi), 0.0)]) if np.isfinite(c_hi) else np.array([np.inf])
    return np.geomspace(float(c_lo) if c_lo > 0 else float(c_hi) * 1e-3, c_hi, n)


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
    if hasattr(knob, "label"):
        return knob.label()
    return "" if knob is None else str(knob)


def sweep(policy, batch, hyper, grade: Grade) -> Sweep:
    """policy: anything with knobs(hyper) and sweep(batch, hyper) -> [(knob, Decision)]."""
    pairs = policy.sweep(batch, hyper)
    return Sweep(hyper, [k for k, _ in pairs], [grade(d) for _, d in pairs])


def choose_hyper(policy, batch, grade: Grade, c_range: tuple[float, float]) -> Sweep:
    """The hyper setting whose calibrate knob sweep has the best AIQ over c_range (first on ties); with a range
    too narrow for a cost axis, the one with the best calibrate accuracy."""
    best = _choose_hyper(policy, batch, grade, c_range)
    refine = getattr(policy, "refine", None)  # a policy may add settings built from the chosen sweep's outcomes
    return refine(batch, best, grade) if refine is not None else best


def _choose_hyper(policy, batch, grade: Grade, c_range: tuple[float, float]) -> Sweep:
    hypers = policy.hypers()
    if len(hypers) == 1:
        return sweep(policy, batch, hypers[0], grade)
    best, best_aiq = None, -np.inf
    accuracy_only = cost_range_too_narrow(*c_range)  # no cost axis: the best calibrate accuracy decides
    for hyper in hypers:
        s = sweep(policy, batch, hyper, grade)
        t = s.table()
        value = (float(t["accuracy"].max()) if accuracy_only else
                 aiq(t["cost_usd"].to_numpy(), t["accuracy"].to_numpy(), c_min=c_range[0], c_max=c_range[1]))
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


MIN_GROUP = 30  # queries a category needs on calibrate before it may leave the global choice
GROUP_MARGIN = 1.0  # standard errors by which a category's own choice must beat the global one


def choose_per_group(accuracy: np.ndarray, cost: np.ndarray, groups, price: float, min_group: int = MIN_GROUP,
                     margin: float = GROUP_MARGIN) -> dict:
    """Per group of queries (e.g. a predicted task type), the option that maximises mean(accuracy - price * cost)
    over the group's queries; accuracy, cost: (options, n) per-query outcomes, option 0 the global choice.

    Guard against calibrate overfitting (shrinkage toward the global choice): a group keeps option 0 unless it
    has >= min_group queries and the best option's paired gain over option 0 exceeds `margin` standard errors.
    Returns {group: option index} for the groups that move (option != 0)."""
    accuracy, cost = np.asarray(accuracy, float), np.asarray(cost, float)
    groups = np.asarray(groups, object)
    utility = accuracy - price * cost
    out = {}
    for g in dict.fromkeys(groups.tolist()):
        sel = groups == g
        n = int(sel.sum())
        if n < max(min_group, 2) or len(utility) < 2:
            continue
        diff = utility[1:, sel] - utility[0, sel]
        gain = diff.mean(1)
        se = diff.std(1, ddof=1) / np.sqrt(n)
        lower = gain - margin * se
        best = int(np.argmax(lower))
        if lower[best] > 0:
            out[g] = best + 1
    return out


def frontier_prices(costs, accuracies, indices) -> dict:
    """For the calibrate frontier points among `indices` (no other is cheaper and at least as accurate): the
    accuracy one more USD/query buys around each, the mean slope to its frontier neighbours (>= 0)."""
    costs, acc = np.asarray(costs, float), np.asarray(accuracies, float)
    order = sorted(indices, key=lambda i: (costs[i], -acc[i]))
    front = []
    for i in order:
        if not front or acc[i] > acc[front[-1]] + 1e-12:
            front.append(i)
    prices = {}
    for pos, i in enumerate(front):
        slopes = []
        for other in (front[pos - 1] if pos else None, front[pos + 1] if pos + 1 < len(front) else None):
            if other is not None and costs[other] != costs[i]:
                slopes.append((acc[other] - acc[i]) / (costs[other] - costs[i]))
        prices[i] = max(float(np.mean(slopes)), 0.0) if slopes else 0.0
    return prices
