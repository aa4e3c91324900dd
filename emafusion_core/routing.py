"""What every router returns, so the cascade and the harness treat all routers alike.

A router maps queries to an ordered tuple of candidate models (cheapest first: the cascade's order), says
which path decided (taxonomy, learned, ...), and what routing itself cost (a slow LLM classifier or a
decomposition call is charged; a local encoder is 0 USD but timed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from .execution import Query


@dataclass(frozen=True)
class Route:
    candidates: tuple[str, ...]  # ordered cheapest first; the cascade runs them in this order
    path: str  # which router decided: "taxonomy", "learned", ...
    router_cost_usd: float = 0.0
    info: dict = field(default_factory=dict)  # labels, confidences, predicted scores: for reports only
    primary: str | None = None  # the one model to run when there is no cascade (router's own pick)

    @property
    def single(self) -> str:
        """The model a no-cascade policy runs: the router's pick, else its last (dearest) candidate."""
        return self.primary if self.primary is not None else self.candidates[-1]


class Router(Protocol):
    def route_batch(self, queries: Sequence[Query]) -> list[Route]:
        ...
