"""Cascades that escalate on a learned judge's verdict: FrugalGPT-style threshold cascade and AutoMix-style
verify-then-escalate. Both share one AnswerScorer per fit split (trained once, 0 USD per call, calls counted).

Each has a vectorised `decide` (the harness's fast path, from judge probabilities of every recorded answer)
and a per-query `run(query, executor, ...)` that walks the same steps through an Executor: the path a live
deployment takes. A test checks the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np

from ...execution import Answer, Query
from ..context import FitData, SplitView
from ..metrics import ndch
from ..replay import Decision
from .answer_scorer import AnswerScorer
from .base import Policy


@dataclass
class CascadeRun:
    """One query through a cascade: the returned answer, every answer paid for, judge calls and their cost."""

    answer: Answer
    answers: list[Answer]
    judge_calls: int
    judge_cost: float

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.answers) + self.judge_cost


def shared_judge(data: FitData) -> AnswerScorer:
    """One AnswerScorer per fit split, shared by every cascade fitted on it."""
    return data.view.cached(("answer-scorer",), lambda: AnswerScorer().fit(data.view, data.scores, seed=data.seed))


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
        self.judge = shared_judge(data)
        self.names = data.model_names
        self.candidates = hull_models(data)
        chains = [c for size in range(2, self.max_len + 1) for c in combinations(self.candidates, size)]
        self.chains = chains or [tuple(self.candidates)]
        judged = self.candidates[:-1]  # the dearest candidate is never judged: it ends every chain it is in
        p_cal = self.judge.prob_matrix(calibrate, judged)
        self.grid = threshold_grid(p_cal[:, judged], self.n_thresholds)
        self.stage_grid = {j: threshold_grid(p_cal[:, j], self.n_stage) for j in judged}

    def hypers(self) -> list:
        return self.chains

    def knobs(self, hyper) -> list:
        if not self.per_stage or len(hyper) <= 2:
            return self.grid
        return list(product(*(self.stage_grid[j] for j in hyper[:-1])))

    @staticmethod
    def _stage_thresholds(knob, length: int) -> np.ndarray:
        t = np.atleast_1d(np.asarray(knob, dtype=float))
        return np.broadcast_to(t, (length - 1,)) if t.size == 1 else t

    def describe(self, hyper) -> str:
        return " > ".join(self.names[i] for i in hyper)

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        chain = np.asarray(hyper)
        thresholds = self._stage_thresholds(knob, len(chain))
        accept = np.ones((len(view), len(chain)), bool)
        for j, model in enumerate(chain[:-1]):
            accept[:, j] = self.judge.prob_column(view, int(model)) >= thresholds[j]
        stop = np.argmax(accept, axis=1)
        ran = np.zeros((len(view), len(self.names)), bool)
        for j, model in enumerate(chain):
            ran[:, model] = stop >= j
        return Decision(final=chain[stop], ran=ran, judge_calls=np.minimum(stop + 1, len(chain) - 1))

    def run(self, query: Query, executor, hyper, knob) -> CascadeRun:
        answers, calls = [], 0
        thresholds = self._stage_thresholds(knob, len(hyper))
        for j, model in enumerate(hyper):
            answers.append(executor.run(query, self.names[model]))
            if j == len(hyper) - 1:
                break
            calls += 1
            if self.judge.prob(query, answers[-1]) >= thresholds[j]:
                break
        return CascadeRun(answers[-1], answers, calls, 0.0)


class AutoMix(Policy):
    """AutoMix-style: a small model answers, a verifier scores the answer, escalate to the large model when the
    score is below the threshold (the knob). Hyper: the small model, chosen on calibrate among the fit hull.

    The verifier signal is the learned AnswerScorer, standing in for AutoMix's few-shot self-verification by
    the small model. That verification would be an LLM call, so it is charged (verify_cost='small_call': one
    more small-model call at this query's recorded small-model cost, an estimate) unless verify_cost='free'."""

    name = "automix"
    knob_name = "threshold"

    def __init__(self, large: str | None = None, verify_cost: str = "small_call", n_thresholds: int = 41):
        if verify_cost not in ("small_call", "free"):
            raise ValueError("verify_cost must be 'small_call' or 'free'")
        self.large_name, self.verify_cost, self.n_thresholds = large, verify_cost, n_thresholds

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.judge = shared_judge(data)
        self.names = data.model_names
        self.large = self.names.index(self.large_name) if self.large_name else int(np.argmax(data.accuracy))
        cheaper = [i for i in hull_models(data) if data.mean_cost[i] < data.mean_cost[self.large]]
        self.smalls = cheaper or [int(np.argmin(data.mean_cost))]
        self.grid = threshold_grid(self.judge.prob_matrix(calibrate, self.smalls)[:, self.smalls], self.n_thresholds)

    def _small_cost(self, view: SplitView, small: int) -> np.ndarray:
        return view.cached(("small-cost", small), lambda: np.array(
            [view.executor.run(q, self.names[small]).cost_usd for q in view.queries]))

    def hypers(self) -> list:
        return self.smalls

    def knobs(self, hyper) -> list:
        return self.grid

    def describe(self, hyper) -> str:
        return f"{self.names[hyper]} -> {self.names[self.large]}"

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        escalate = ~(self.judge.prob_column(view, hyper) >= knob)  # no answer to verify (NaN): escalate
        ran = np.zeros((len(view), len(self.names)), bool)
        ran[:, hyper] = True
        ran[:, self.large] |= escalate
        judge_cost = self._small_cost(view, hyper) if self.verify_cost == "small_call" else None
        return Decision(final=np.where(escalate, self.large, hyper), ran=ran, judge_calls=np.ones(len(view)),
                        judge_cost=judge_cost)

    def run(self, query: Query, executor, hyper, knob) -> CascadeRun:
        small = executor.run(query, self.names[hyper])
        verdict = self.judge.prob(query, small)
        judge_cost = small.cost_usd if self.verify_cost == "small_call" else 0.0
        if verdict >= knob:
            return CascadeRun(small, [small], 1, judge_cost)
        large = executor.run(query, self.names[self.large])
        return CascadeRun(large, [small, large], 1, judge_cost)
