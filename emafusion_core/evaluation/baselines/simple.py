"""Baselines that need no learning: single models, the zero router, a random router, and the oracle ceiling."""
from __future__ import annotations

import numpy as np

from ..context import FitData, SplitView
from ..metrics import ndch
from ..replay import Decision, Scorer
from .base import Policy


class SingleModel(Policy):
    """Always the same model: one operating point."""

    knob_name = "model"

    def __init__(self, model: str):
        self.model = model
        self.name = f"single:{model}"

    def knobs(self, hyper) -> list:
        return [self.model]

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        return Decision(final=np.full(len(view), view.model_names.index(self.model)))


class ZeroRouter(Policy):
    """A biased coin between two neighbouring models of the fit split's single-model hull (evaluation.md #2).

    Knob (a, b, f), model names: send a query to b with probability f, else to a. Any point on the hull is reachable, so a
    router that does not beat this has learned nothing about queries."""

    name = "zero-router"
    knob_name = "mix"

    def __init__(self, steps: int = 10):
        self.steps = steps

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.names = data.model_names
        cost, acc = data.mean_cost, data.accuracy
        hull_cost, _ = ndch(cost, acc)
        # Hull knots back to model indices (cheapest such model on equal cost).
        self.hull = [int(np.flatnonzero(cost == c)[np.argmax(acc[cost == c])]) for c in hull_cost]

    def knobs(self, hyper) -> list:
        names = [self.names[i] for i in self.hull]
        grid = np.linspace(0, 1, self.steps + 1)[:-1]
        knobs = [(a, b, round(float(f), 6)) for a, b in zip(names[:-1], names[1:]) for f in grid]
        return knobs + [(names[-1], names[-1], 0.0)]

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        a, b, f = knob
        u = view.rng(self.name).random(len(view))
        return Decision(final=np.where(u < f, view.model_names.index(b), view.model_names.index(a)))


class RandomRouter(Policy):
    """Query-blind routing: with probability p the dearest model, otherwise a model drawn uniformly.

    p = 0 is RouterBench's uniform random router; p = 1 is the dearest model alone. Common random numbers
    across p, so the curve is monotone in p rather than noisy."""

    name = "random"
    knob_name = "p_dearest"

    def __init__(self, steps: int = 10):
        self.grid = [round(float(p), 6) for p in np.linspace(0, 1, steps + 1)]

    def knobs(self, hyper) -> list:
        return self.grid

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        rng = view.rng(self.name)
        m = len(view.model_names)
        u, pick = rng.random(len(view)), rng.integers(0, m, len(view))
        return Decision(final=np.where(u < knob, m - 1, pick))


class Oracle(Policy):
    """The ceiling: per query the cheapest model with the best score (knob lambda = 0, evaluation.md #4).

    Larger lambda trades score for cost per query with the true scores and costs (argmax of score -
    lambda * cost / dearest fit USD), which traces the best frontier any router could reach, so the oracle
    has an AIQ over the same range as every policy. Reads scores: a ceiling, never a deployable policy."""

    name = "oracle (ceiling)"
    knob_name = "lambda"
    reads_scores = True

    def __init__(self, scorer: Scorer, lambdas=None):
        from .routers import DEFAULT_LAMBDAS

        self._scorer = scorer
        self.lambdas = list(DEFAULT_LAMBDAS if lambdas is None else lambdas)

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.unit = float(data.mean_cost.max())

    def knobs(self, hyper) -> list:
        return self.lambdas

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        scores, costs = self._scorer.scores(view.query_ids), self._scorer.costs(view.query_ids)
        utility = scores - (knob or 0.0) * costs / getattr(self, "unit", 1.0)
        best = utility.max(axis=1, keepdims=True)
        return Decision(final=np.argmin(np.where(utility >= best - 1e-12, costs, np.inf), axis=1))
