"""Cascades that escalate on a learned judge's verdict, as configurations of the one cascade (cascade.py):
FrugalGPT-style threshold cascade and AutoMix-style verify-then-escalate. Both judge with the learned verifier
of their fit split (the one EMAFusion uses: method.fit_verifier), 0 USD per call, calls counted.
"""
from __future__ import annotations

from itertools import combinations, product

import numpy as np

from ...cascade import State, confidences_on, run_cascade, thresholds
from ...judges import ChargedAsAnswer, Panel
from ...method import fit_verifier
from ..context import FitData, SplitView
from ..metrics import ndch
from ..replay import Decision
from .base import Policy


def judge_probs(view: SplitView, judge, model: int) -> np.ndarray:
    return confidences_on(view, view.executor, view.model_names, judge, model)


def hull_models(data: FitData) -> list[int]:
    """Models on the fit split's non-decreasing convex hull (the ones worth chaining), cheapest first."""
    cost, acc = data.mean_cost, data.accuracy
    hull_cost, _ = ndch(cost, acc)
    return sorted(int(np.flatnonzero(cost == c)[np.argmax(acc[cost == c])]) for c in hull_cost)


def threshold_grid(probs: np.ndarray, n: int) -> list[float]:
    """Quantiles of calibrate judge probabilities, plus 0 (always accept) and 1.01 (never accept)."""
    finite = probs[np.isfinite(probs)]
    qs = np.quantile(finite, np.linspace(0, 1, n)) if finite.size else np.array([])
    return sorted({0.0, 1.01, *np.round(qs, 6).tolist()})


def _chain_decision(view: SplitView, chain, panel: Panel, tau) -> Decision:
    cands = np.broadcast_to(np.asarray(chain, int), (len(view), len(chain)))
    state = State(view, view.model_names, view.executor)
    return run_cascade(state, cands, panel, thresholds(tau, len(view), len(chain)))


class ThresholdCascade(Policy):
    """FrugalGPT-style: run the chain cheapest to dearest, return the first answer the judge scores >= threshold.

    Hyper: the chain (2 to max_len models of the fit hull, in cost order), chosen on calibrate. Knob: a
    tuple of thresholds, one per judged stage (FrugalGPT tunes one per stage), each from an 11-point grid of
    that stage's calibrate probabilities; or with per_stage=False one threshold (41-point grid) shared by every
    stage. The last answer is returned unjudged."""

    name = "frugal-cascade"
    knob_name = "threshold"

    def __init__(self, max_len: int = 3, n_thresholds: int = 41, per_stage: bool = True,
                 n_stage_thresholds: int = 11, name: str | None = None):
        self.max_len, self.n_thresholds = max_len, n_thresholds
        self.per_stage, self.n_stage = per_stage, n_stage_thresholds
        if name:
            self.name = name

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.verifier = fit_verifier(data)
        self.panel = Panel([self.verifier])
        self.names = data.model_names
        self.candidates = hull_models(data)
        chains = [c for size in range(2, self.max_len + 1) for c in combinations(self.candidates, size)]
        self.chains = chains or [tuple(self.candidates)]
        judged = self.candidates[:-1]  # the dearest candidate is never judged: it ends every chain it is in
        p_cal = {j: judge_probs(calibrate, self.verifier, j) for j in judged}
        self.grid = threshold_grid(np.concatenate([p_cal[j] for j in judged]) if judged else np.array([]),
                                   self.n_thresholds)
        self.stage_grid = {j: threshold_grid(p_cal[j], self.n_stage) for j in judged}

    def hypers(self) -> list:
        return self.chains

    def knobs(self, hyper) -> list:
        if not self.per_stage or len(hyper) <= 2:
            return self.grid
        return list(product(*(self.stage_grid[j] for j in hyper[:-1])))

    def describe(self, hyper) -> str:
        return " > ".join(self.names[i] for i in hyper)

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        return _chain_decision(view, hyper, self.panel, knob)


class AutoMix(Policy):
    """AutoMix-style: a small model answers, a verifier scores the answer, escalate to the large model when the
    score is below the threshold (the knob). Hyper: the small model, chosen on calibrate among the fit hull.

    The verifier signal is the learned verifier, standing in for AutoMix's few-shot self-verification by the
    small model. That verification would be an LLM call, so it is charged (verify_cost='small_call': one more
    small-model call at this query's recorded small-model cost, an estimate) unless verify_cost='free'."""

    name = "automix"
    knob_name = "threshold"

    def __init__(self, large: str | None = None, verify_cost: str = "small_call", n_thresholds: int = 41):
        if verify_cost not in ("small_call", "free"):
            raise ValueError("verify_cost must be 'small_call' or 'free'")
        self.large_name, self.verify_cost, self.n_thresholds = large, verify_cost, n_thresholds

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        verifier = fit_verifier(data)
        self.panel = Panel([ChargedAsAnswer(verifier) if self.verify_cost == "small_call" else verifier])
        self.names = data.model_names
        self.large = self.names.index(self.large_name) if self.large_name else int(np.argmax(data.accuracy))
        cheaper = [i for i in hull_models(data) if data.mean_cost[i] < data.mean_cost[self.large]]
        self.smalls = cheaper or [int(np.argmin(data.mean_cost))]
        self.grid = threshold_grid(np.concatenate([judge_probs(calibrate, verifier, j) for j in self.smalls]),
                                   self.n_thresholds)

    def hypers(self) -> list:
        return self.smalls

    def knobs(self, hyper) -> list:
        return self.grid

    def describe(self, hyper) -> str:
        return f"{self.names[hyper]} -> {self.names[self.large]}"

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        return _chain_decision(view, (hyper, self.large), self.panel, float(knob))
