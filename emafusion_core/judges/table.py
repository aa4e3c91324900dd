"""A judge whose verdicts were computed in one batch beforehand (e.g. a learned verifier over every
(query, model) answer of a split): the cascade then looks them up instead of calling the model one answer
at a time. Same verdicts, same costs, much faster replay."""
from __future__ import annotations

from typing import Mapping

from ..execution import Answer, Query
from .base import Verdict


class TableJudge:
    def __init__(self, name: str, confidences: Mapping[tuple[str, str], float | None],
                 cost_usd: Mapping[tuple[str, str], float] | None = None, calls_per_verdict: int = 0):
        self.name, self.confidences = name, confidences
        self.cost_usd = cost_usd or {}
        self.calls_per_verdict = calls_per_verdict

    def judge(self, query: Query, answer: Answer, paid: Mapping[str, Answer] | None = None) -> Verdict:
        key = (query.query_id, answer.model)
        if key not in self.confidences:
            raise KeyError(f"{self.name}: no precomputed verdict for query {key[0]!r}, model {key[1]!r}")
        return Verdict(self.name, self.confidences[key], float(self.cost_usd.get(key, 0.0)), self.calls_per_verdict)
