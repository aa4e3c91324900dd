"""The executor interface: the one thing that differs between offline replay and live use (design.md).

A policy (router, cascade) asks an executor to run a model on a query and gets an Answer: the text and
what it cost. It never sees a score. The ReplayExecutor (evaluation) reads recorded outcomes; the
LiteLLMExecutor (llm) calls a provider through the cached gateway.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Query:
    """What a policy may know about a request: text and metadata, never a score."""

    query_id: str
    prompt: str
    question: str | None = None  # the request without few-shot exemplars (what routers embed)
    benchmark: str = ""
    category: str = ""
    answer_format: str = "free_text"
    metadata: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.question or self.prompt


@dataclass(frozen=True)
class Answer:
    """One model run. `error` set means the run failed or abstained; its cost is still charged."""

    query_id: str
    model: str
    response: str | None
    cost_usd: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None


class Executor(Protocol):
    def run(self, query: Query, model: str) -> Answer:
        ...
