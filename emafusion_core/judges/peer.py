"""Peer-agreement judge: another model answers the same query; agreement with it is the confidence.

Answers already paid for earlier in the cascade are reused at no cost; otherwise the peer model is run
through the state's executor (replay or live) and its cost is charged to the judges; the cascade then reuses
that answer without paying twice.
"""
from __future__ import annotations

import numpy as np

from .base import memo_column
from .extract import agreement


class PeerAgreementJudge:
    def __init__(self, peer_model: str):
        self.peer_model = peer_model
        self.name = f"peer:{peer_model}"

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        rows, models = np.asarray(rows, int), np.asarray(models, int)
        out = np.full(len(rows), np.nan)
        if self.peer_model not in state.model_names:
            return out
        p = state.model_index(self.peer_model)
        applies = models != p  # the candidate is the peer itself: abstain
        state.buy(rows[applies], p, for_judge=True)
        queries = state.batch.queries
        for j in np.unique(models[applies]):
            sel = applies & (models == j)
            r = rows[sel]
            vals = memo_column(state, ("peer-agreement", int(j), p), r, lambda todo: np.array(
                [np.nan if (v := agreement(queries[i].answer_format, state.text[i, j], state.text[i, p])) is None
                 else v for i in todo], float))
            out[sel] = np.where(state.readable[r, j] & state.readable[r, p], vals, np.nan)
        return out
