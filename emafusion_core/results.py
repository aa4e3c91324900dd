"""What a policy did on a batch (Decision: model indices and run masks, no scores) and what it was worth
(Outcome: per-query accuracy and cost), with the one function that turns the first into the second.

Grading needs the score matrix, so only its holders call `grade`: the evaluation Scorer (test numbers) and
the method's calibration (the calibrate split's labels, which is what calibration is for).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Decision:
    """What a policy did on each query of a batch, as arrays over the model names (cheapest first).

    final: (n,) index of the model whose answer is returned. ran: (n, m) bool of models run and charged to the
    answer (None: only the final one). judge_calls / judge_cost / router_cost: (n,) per query (None: zero).
    taxonomy_path: (n,) bool, for routers with two paths: True where the taxonomy router decided.
    fallback: (n,) bool where the returned answer is an earlier paid answer because the last candidate failed."""

    final: np.ndarray
    ran: np.ndarray | None = None
    judge_calls: np.ndarray | None = None
    judge_cost: np.ndarray | None = None
    router_cost: np.ndarray | None = None
    taxonomy_path: np.ndarray | None = None
    fallback: np.ndarray | None = None

    def ran_mask(self, n_models: int) -> np.ndarray:
        if self.ran is not None:
            return self.ran
        mask = np.zeros((len(self.final), n_models), bool)
        mask[np.arange(len(self.final)), self.final] = True
        return mask


@dataclass
class Outcome:
    """Per-query results of one Decision: what the harness aggregates, bootstraps and tabulates."""

    accuracy: np.ndarray
    model_cost: np.ndarray
    judge_cost: np.ndarray
    router_cost: np.ndarray
    judge_calls: np.ndarray
    calls: np.ndarray  # (n, m) bool: models run
    final: np.ndarray  # (n,) model answered
    taxonomy_path: np.ndarray | None = None  # (n,) bool where a two-path router took the taxonomy path
    failed: np.ndarray | None = None  # (n,) bool where the returned answer is a failed call (scored 0)

    @property
    def cost(self) -> np.ndarray:
        return self.model_cost + self.judge_cost + self.router_cost

    def summary(self, model_names) -> dict:
        """Mean accuracy and USD/query with the breakdown, judge calls, and per model: `share:` of final answers
        and `calls:` runs per query (they differ for cascades, which pay for models whose answer they drop)."""
        n = len(self.accuracy)
        cost = float(self.cost.mean())
        share = np.bincount(self.final, minlength=len(model_names)) / max(n, 1)
        out = dict(accuracy=float(self.accuracy.mean()), cost_usd=cost, model_cost=float(self.model_cost.mean()),
                   judge_cost=float(self.judge_cost.mean()), router_cost=float(self.router_cost.mean()),
                   judge_calls=float(self.judge_calls.mean()), models_run=float(self.calls.sum(1).mean()),
                   judge_share_of_cost=float(self.judge_cost.mean() / cost) if cost > 0 else 0.0)
        out.update({f"share:{m}": float(s) for m, s in zip(model_names, share)})
        out.update({f"calls:{m}": float(c) for m, c in zip(model_names, self.calls.mean(axis=0))})
        out["taxonomy_share"] = float(self.taxonomy_path.mean()) if self.taxonomy_path is not None else float("nan")
        return out


def grade(decision: Decision, scores: np.ndarray, costs: np.ndarray, failed: np.ndarray | None = None) -> Outcome:
    """Per-query outcome of a decision over (n, m) score and cost matrices of the same queries: accuracy of the
    returned answer (a failed call scores 0: it is no answer, whatever the table's score cell holds), cost of
    every model run plus judges and routing."""
    n, m = scores.shape
    final = np.asarray(decision.final, dtype=int)
    if final.shape != (n,):
        raise ValueError(f"decision covers {final.shape} queries, expected {n}")
    ran = decision.ran_mask(m)
    rows = np.arange(n)
    accuracy = np.nan_to_num(scores[rows, final], nan=0.0)
    bad = None if failed is None else failed[rows, final]
    if bad is not None:
        accuracy = np.where(bad, 0.0, accuracy)
    zero = np.zeros(n)
    as_float = lambda a: zero if a is None else np.asarray(a, float)  # noqa: E731
    return Outcome(accuracy=accuracy, model_cost=(costs * ran).sum(1), judge_cost=as_float(decision.judge_cost),
                   router_cost=as_float(decision.router_cost), judge_calls=as_float(decision.judge_calls),
                   calls=ran, final=final,
                   taxonomy_path=None if decision.taxonomy_path is None else np.asarray(decision.taxonomy_path, bool),
                   failed=bad)
