"""The Judge protocol: confidences that answers are right, for rows of the cascade's answers-so-far state.

A judge sees only what exists at inference time: the queries, the candidate answers, the answers already
bought and the routers' ex-ante predictions, all read from the State. Never a score. A judge that cannot
decide abstains (NaN): its cost is still charged (to the state's judge cost). Batched, so replay judges a
whole split in one call and live judges a request (or concurrent requests) in one call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Verdict:
    """One judge's verdict on one answer, as reported by `ask` and `serve`."""

    judge: str
    confidence: float | None  # P(answer is right) in [0, 1]; None = abstained
    detail: str = ""

    @property
    def abstained(self) -> bool:
        return self.confidence is None


class Judge(Protocol):
    name: str

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        """(len(rows),) P(right) of model models[r]'s answer on query rows[r]; NaN = abstain. Charges its calls
        to the state (state.charge_judge / state.buy(..., for_judge=True))."""
        ...


def memo_column(state, key, rows: np.ndarray, compute) -> np.ndarray:
    """Per-batch memo of a judge's values for one model: compute(rows) only for rows not yet computed.

    Valid because an executor answers the same (query, model) the same way within a batch (replay; cache)."""
    vals, done = state.batch.cached(key, lambda: (np.full(len(state), np.nan), np.zeros(len(state), bool)))
    todo = rows[~done[rows]]
    if len(todo):
        vals[todo] = compute(todo)
        done[todo] = True
    return vals[rows]


def judge_answer(judge, query, answer, model_names=None):
    """One judge on one answer outside a cascade (diagnostics, demos): a one-query state holding the answer."""
    from ..cascade import State
    from ..execution import Batch

    names = list(model_names or [answer.model])
    state = State(Batch([query]), names, executor=None, record=True)
    j = names.index(answer.model)
    state.paid[0, j], state.readable[0, j] = True, answer.ok
    state.text[0, j], state.error[0, j], state.cost[0, j] = answer.response, answer.error_kind, answer.cost_usd
    conf = float(judge.judge_rows(state, np.array([0]), np.array([j]))[0])
    detail = state.details.get((0, j, judge.name), "")
    return Verdict(judge.name, None if np.isnan(conf) else conf, detail), float(state.judge_cost[0])


class ChargedAsAnswer:
    """A judge whose verdict costs one more call of the answering model (AutoMix's few-shot self-verification,
    stood in for by `inner`): the answer's own recorded cost is charged to the judges."""

    def __init__(self, inner, name: str | None = None):
        self.inner, self.name = inner, name or f"{inner.name} (charged as a call)"

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        state.charge_judge(rows, state.cost[rows, models], 0)
        return self.inner.judge_rows(state, rows, models)
