"""The live side of "one pipeline, two executors": runs a model on a Query through the gateway.

Same interface as the evaluation harness's replay executor, so a router or cascade built for replay runs
live unchanged. A failure never escapes as an exception that would lose a batch: it becomes an Answer
with a typed `error_kind` and the cost incurred (a truncated reply was paid for; a refused or failed call was not).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ..execution import Answer, ErrorKind, Query
from .client import LLMClient
from .errors import BadReply, LLMError
from .types import Reply, Request

DEFAULT_PARAMS = {"temperature": 0.0, "max_tokens": 512}


def plain_messages(query: Query) -> list[dict]:
    """The query's prompt (few-shot exemplars included) as a single user turn."""
    return [{"role": "user", "content": query.prompt}]


class LiteLLMExecutor:
    """Executor over an LLMClient.

    models: maps the names a policy uses (e.g. the suite's "gpt-3.5-turbo-1106") to gateway model ids;
      names not listed are used as they are.
    messages: builds the chat from a Query; `template_version` must change whenever it does (it is part of
      the cache key)."""

    def __init__(self, client: LLMClient, *, params: Mapping | None = None, models: Mapping[str, str] | None = None,
                 messages: Callable[[Query], list[dict]] = plain_messages, template_version: str = "plain-v1"):
        self.client = client
        self.params = dict(DEFAULT_PARAMS if params is None else params)
        self.models = dict(models or {})
        self.messages = messages
        self.template_version = template_version

    def request(self, query: Query, model: str) -> Request:
        return Request(self.models.get(model, model), self.messages(query), dict(self.params),
                       template_version=self.template_version)

    def run(self, query: Query, model: str) -> Answer:
        try:
            outcome: Reply | LLMError = self.client.call(self.request(query, model))
        except LLMError as exc:
            outcome = exc
        return self._answer(query, model, outcome)

    def run_many(self, jobs: Sequence[tuple[Query, str]], *, desc: str = "models") -> list[Answer]:
        """Many (query, model) runs concurrently; answers in input order."""
        outcomes = self.client.batch([self.request(q, m) for q, m in jobs], desc=desc)
        return [self._answer(q, m, o) for (q, m), o in zip(jobs, outcomes)]

    @staticmethod
    def _answer(query: Query, model: str, outcome: Reply | LLMError) -> Answer:
        if isinstance(outcome, LLMError):
            return Answer(query_id=query.query_id, model=model, response=None, cost_usd=outcome.cost_usd,
                          input_tokens=getattr(outcome, "input_tokens", None),
                          output_tokens=getattr(outcome, "output_tokens", None),
                          error_kind=ErrorKind.BAD_REPLY if isinstance(outcome, BadReply) else ErrorKind.of(outcome.kind),
                          error=f"{outcome.kind}: {outcome}")
        return Answer(query_id=query.query_id, model=model, response=outcome.text, cost_usd=outcome.cost_usd,
                      input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                      latency_s=outcome.latency_s, cached=outcome.cached)
