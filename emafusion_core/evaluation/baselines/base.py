"""The policy interface the harness drives: fit on the fit split, then decide per (hyper, knob) on any split.

Two kinds of settings, both chosen on the calibrate split by the harness, never by the policy:
- hyper: a structural choice fixed once per seed (the cascade's chain, kNN's k), picked by calibrate AIQ;
- knob: the cost-quality dial (lambda, threshold, strong share), picked per budget.
`decide` sees a SplitView (texts, embeddings, an executor), never a score.
"""
from __future__ import annotations

from ..context import FitData, SplitView
from ..replay import Decision


class PolicyUnavailable(RuntimeError):
    """Raised by a policy's fit when the suite cannot support it (e.g. the taxonomy router on a suite whose fit
    queries have no taxonomy labels). The harness reports the policy as unavailable and runs the others."""


class Policy:
    name: str = "policy"
    knob_name: str = "knob"
    reads_scores: bool = False  # True only for the oracle: a ceiling, not a policy one could deploy

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        """Train on fit (labels allowed) and look at calibrate's texts (no labels) to set knob grids."""

    def hypers(self) -> list:
        return [None]

    def knobs(self, hyper) -> list:
        return [None]

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        raise NotImplementedError

    def sweep(self, view: SplitView, hyper) -> list[tuple[object, Decision]]:
        return [(knob, self.decide(view, hyper, knob)) for knob in self.knobs(hyper)]

    def describe(self, hyper) -> str:
        """A readable label of a hyper setting for the result tables."""
        return "" if hyper is None else str(hyper)


def pick_utility(predicted, unit_cost, lam: float):
    """argmax over models of predicted score - lam * cost; ties go to the cheaper model (first column)."""
    import numpy as np

    return np.argmax(predicted - lam * unit_cost[None, :], axis=1)
