"""The judged cascade (cascade.Cascade with a panel of verifier and peer-agreement judges), vectorised over
a batch for replay, so a sweep over thresholds costs milliseconds instead of a Python loop per query.

It follows Cascade.run step for step: candidates cheapest first; a candidate with no answer is escalated
unjudged; the last candidate answers unconditionally; judges run in panel order and a peer's answer, once
bought, is charged to the judges and reused free by later judges and by the cascade. A test checks it
against Cascade.run with real Judge objects on the same inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..judges import aggregate
from .replay import Decision


@dataclass
class PanelInputs:
    """Everything the judges would see, precomputed per split (no score anywhere).

    verifier: (n, m) P(right) of each model's answer (NaN: no answer); agreement: peer index -> (n, m)
    agreement of each model's answer with that peer's (NaN: nothing to compare); has_answer: (n, m) bool;
    costs: (n, m) recorded USD of each model run (what buying a peer's answer costs)."""

    verifier: np.ndarray | None
    agreement: dict[int, np.ndarray]
    has_answer: np.ndarray
    costs: np.ndarray


def cascade_decision(candidates: np.ndarray, inputs: PanelInputs, judges: list, tau_j: float,
                     rule: str = "mean", router_cost: np.ndarray | None = None) -> Decision:
    """candidates: (n, k) model indices cheapest first, -1 = no candidate. judges: "verifier" and/or peer
    model indices, in panel order."""
    cand = np.asarray(candidates, int)
    n, k = cand.shape
    m = inputs.costs.shape[1]
    rows = np.arange(n)
    n_valid = (cand >= 0).sum(axis=1)
    if (n_valid == 0).any():
        raise ValueError("every query needs at least one candidate")
    paid = np.zeros((n, m), bool)
    ran = np.zeros((n, m), bool)
    final = np.full(n, -1)
    judge_cost, judge_calls = np.zeros(n), np.zeros(n)
    active = np.ones(n, bool)
    for step in range(k):
        c = cand[:, step]
        here = active & (c >= 0)
        if not here.any():
            break
        cc = np.where(here, c, 0)
        run = here & ~paid[rows, cc]
        ran[rows[run], cc[run]] = True
        paid[rows[here], cc[here]] = True
        final[here] = c[here]
        is_last = here & (step == n_valid - 1)
        judging = here & ~is_last & inputs.has_answer[rows, cc]
        confs = []
        for judge in judges:
            if judge == "verifier":
                confs.append(np.where(judging, inputs.verifier[rows, cc], np.nan))
                judge_calls += judging
                continue
            applies = judging & (cc != judge)
            buy = applies & ~paid[:, judge]
            judge_cost += np.where(buy, inputs.costs[:, judge], 0.0)
            judge_calls += buy
            paid[buy, judge] = True
            confs.append(np.where(applies & inputs.has_answer[:, judge], inputs.agreement[judge][rows, cc], np.nan))
        if confs:
            panel = aggregate(np.stack(confs, axis=1), rule)
            accept = judging & ~np.isnan(panel) & (np.nan_to_num(panel, nan=-1.0) >= tau_j)
        else:
            accept = np.zeros(n, bool)
        active &= ~(accept | is_last)
    return Decision(final=final, ran=ran, judge_calls=judge_calls, judge_cost=judge_cost,
                    router_cost=np.zeros(n) if router_cost is None else router_cost)
