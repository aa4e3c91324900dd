"""The Judge protocol: (query, candidate answer, what the system has paid for so far) -> Verdict.

A judge sees only what exists at inference time: the query, the answer, and answers already bought.
Never a score. A judge that cannot decide abstains (confidence None): its cost is still charged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol

from ..execution import Answer, Query


@dataclass(frozen=True)
class Verdict:
    judge: str
    confidence: float | None  # P(answer is right) in [0, 1]; None = abstained
    cost_usd: float = 0.0
    calls: int = 0  # LLM or model calls this verdict needed (0 when it reused paid answers or ran locally)
    new_answers: tuple[Answer, ...] = ()  # answers the judge bought (the cascade may reuse them for free)
    detail: str = ""

    @property
    def abstained(self) -> bool:
        return self.confidence is None


class Judge(Protocol):
    name: str

    def judge(self, query: Query, answer: Answer, paid: Mapping[str, Answer]) -> Verdict:
        ...
