"""Decomposition of a live request into subproblems (EMAFusion step 1), each routed on its own.

An LLM is asked for {"subproblems": [...]} through the gateway. A reply that does not parse, an empty
list, or a provider error leaves the request whole (one subproblem) and is logged; its cost is charged.
Benchmark queries are one subproblem each, so the replayed results never call this.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .llm import LLMClient, LLMError, Request
from .llm.json_reply import parse_json_object

log = logging.getLogger(__name__)
TEMPLATE_VERSION = "decompose-json-v1"
MAX_SUBPROBLEMS = 5  # our default: more parts than this is more likely a parsing accident than a plan

_INSTRUCTIONS = (
    "Split the user request below into the smallest set of independent subproblems that together answer it. "
    "A request that asks one thing stays one subproblem. Each subproblem must be a complete, self-contained "
    'question. Reply with JSON only: {"subproblems": ["...", "..."]}'
)


@dataclass(frozen=True)
class Decomposition:
    parts: tuple[str, ...]
    cost_usd: float
    split: bool  # False when the request stayed whole (one part asked for, or the reply was unusable)
    problem: str | None = None


class Decomposer:
    def __init__(self, client: LLMClient, model: str, max_tokens: int = 400):
        self.client, self.model = client, model
        self.params = {"temperature": 0.0, "max_tokens": max_tokens}

    def split(self, text: str) -> Decomposition:
        request = Request(self.model, [{"role": "system", "content": "You plan how to answer requests."},
                                       {"role": "user", "content": f"{_INSTRUCTIONS}\n\nRequest:\n{text}"}],
                          dict(self.params), template_version=TEMPLATE_VERSION)
        try:
            reply = self.client.call(request)
        except LLMError as exc:
            log.warning("decomposition failed (%s): the request stays whole", exc.kind)
            return Decomposition((text,), exc.cost_usd, False, exc.kind)
        obj = parse_json_object(reply.text)
        parts = obj.get("subproblems") if obj else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) and p.strip() for p in parts) \
                or len(parts) > MAX_SUBPROBLEMS:
            log.warning("decomposition reply unusable (%.80r): the request stays whole", reply.text)
            self.client.mark_bad(reply.key, "decomposition did not parse")
            return Decomposition((text,), reply.cost_usd, False, "unparseable")
        parts = tuple(p.strip() for p in parts)
        return Decomposition(parts, reply.cost_usd, len(parts) > 1)


def join_answers(parts: tuple[str, ...], answers: list[str]) -> str:
    """One answer for the user: each subproblem's answer under its question (a single part: the answer alone)."""
    if len(parts) == 1:
        return answers[0]
    return "\n\n".join(f"**{q}**\n{a}" for q, a in zip(parts, answers))
