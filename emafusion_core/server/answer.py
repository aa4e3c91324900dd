"""Answering one request: a per-request view of the system over a chained budget, then the server's fallback
and error mapping (`_outcome`), then the "emafusion" extra field (`_extra`)."""
from __future__ import annotations

import threading
import time

from ..decompose import join_answers
from ..execution import ErrorKind, Query
from ..llm import Budget, BudgetExceeded, ChainedBudget, LLMClient
from ..llm.errors import BadReply
from ..system import AskResult, EMAFusionSystem
from .openai import APIError, ChatRequest, Served

RETRY_AFTER_S = 1  # a refusal by the server's budget while calls in flight hold it: retry after this


class Server:
    """The system behind the HTTP app, shared by all requests.

    budget_usd: None, the system client's own Budget is the server's budget; a number, a new Budget with
    that cap (scope "server") on top of the client's own. Each request runs on
    `system.client.view(budget=ChainedBudget(request cap, self.budgets))`."""

    def __init__(self, system: EMAFusionSystem, budget_usd: float | None = None):
        """With `self_optimising.enabled` in the config, the loop (online_store.SharedLoop) is opened here: a
        stored state that cannot be used raises LearnedStateError before anything is served."""
        self.system = system
        own = system.client.budget
        self.budget = own if budget_usd is None else Budget(budget_usd, scope="server")
        self.budgets = [self.budget] if self.budget is own else [self.budget, own]
        self.requests = 0
        self._count_lock = threading.Lock()
        self.loop = system.self_optimising_loop() if system.config.self_optimising.enabled else None

    def answer(self, chat: ChatRequest) -> Served:
        """Run the system for one request (blocking; called in a worker thread). Raises APIError."""
        with self._count_lock:
            self.requests += 1
        started = time.perf_counter()
        deadline = chat.deadline_s if chat.deadline_s is not None else self.system.config.deadline_s
        client = self.system.client.view(budget=ChainedBudget(chat.cap_usd, self.budgets, scope="request"),
                                         deadline_s=deadline)
        view = self.system.with_client(client)
        result = view.ask(chat.text, loop=self.loop)
        texts, finish, fallbacks = _outcome(chat, result, view, client, {b.scope for b in self.budgets})
        extra = _extra(chat, result, client, fallbacks, started)
        if self.loop is not None:  # an answered request: its verdicts are queued (and maybe folded in)
            extra["self_optimising"] = self.loop.record(result.observed)
        return Served(join_answers(tuple(t for t, _, _ in result.parts), texts), finish, extra, *client.record.usage)

    def self_optimising(self) -> dict:
        """The read-only report of GET /v1/emafusion/self-optimising."""
        if self.loop is None:
            return {"enabled": False, "version": None}
        return self.loop.report()


def _outcome(chat: ChatRequest, result: AskResult, view: EMAFusionSystem, client: LLMClient,
             server_scopes: set[str]) -> tuple[list[str], str, list[dict]]:
    """The HTTP side of the shared fallback policy (cascade.py decides what is returned, for `ask` and `serve`
    alike), for every part of the request.

    Per part: the returned answer; if it is the cascade's fallback (the last candidate failed), a `fallback`
    entry says why escalation stopped; a truncated final answer with nothing to fall back on is returned as it
    is with finish_reason "length"; else the part failed. If any part failed: 429 (insufficient_quota) when
    every failure was a budget refusal and one came from the server's budgets (rate_limit_error with
    Retry-After when a refusal was transient: reservations in flight hold what would pay for it;
    insufficient_quota only when no refusal was transient: the cap is spent), 402 when they came from the
    request's cap; 504 when a part ran out of time (the deadline) with nothing paid for to fall back on; 400
    for a prompt beyond the context window; 502 otherwise. Returns (texts per part, finish_reason, fallback entries)."""
    texts, finish, fallbacks, failures = [], "stop", [], []
    for i, (text, route, r) in enumerate(result.parts):
        if r.answer.ok:
            texts.append(r.answer.response)
            if r.fallback:
                fallbacks.append({"answered_by": r.answer.model, "escalation_failed": r.models_run[-1],
                                  "reason": r.escalation_error})
            continue
        query = Query(f"request-{i}", text)
        final = client.record.outcomes.get(client.key(view.executor.executors[r.answer.model].request(query,
                                                                                                    r.answer.model)))
        if isinstance(final, BadReply) and final.kind == "truncated" and final.text:
            texts.append(final.text)
            finish = "length"
            continue
        reasons = [f"{m}: {a.error[:300]}" for m, a in r.answers.items() if not a.ok and a.error]
        failures.append("; ".join(reasons) or r.answer.error or "no answer")
    if failures:
        budget_errors = [e for e in client.record.errors if isinstance(e, BudgetExceeded)]
        final_kinds = {r.answer.error_kind for _, _, r in result.parts if not r.answer.ok}
        if budget_errors and final_kinds == {ErrorKind.BUDGET}:
            by_server = [e for e in budget_errors if e.scope in server_scopes]
            if any(e.transient for e in by_server):  # a retry can succeed once those settle
                raise APIError(429, "the server's USD budget is held by requests in flight: retry shortly "
                                    f"({failures[0]})", "rate_limit_error", None, "rate_limit_exceeded",
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            if by_server:
                raise APIError(429, "the server's USD budget is exhausted: no model call could be paid for "
                                    f"({failures[0]})", "insufficient_quota", None, "insufficient_quota")
            raise APIError(402, f"the request cannot be answered within its cap of ${chat.cap_usd} "
                                f"({failures[0]})", "budget_exceeded", "model", "budget_exceeded")
        if ErrorKind.DEADLINE in final_kinds:
            raise APIError(504, "the request's deadline passed before any model answered, and nothing already paid "
                                f"for could be returned ({failures[0]})", "timeout", None, "deadline_exceeded")
        overflow = [e for e in client.record.errors if getattr(e, "kind", None) == "context_window"]
        if overflow and final_kinds <= {ErrorKind.PROVIDER, ErrorKind.BUDGET}:
            raise APIError(400, "the request does not fit the context window of the models that could answer it: "
                                f"shorten it ({failures[0]})", "invalid_request_error", "messages",
                           "context_length_exceeded")
        raise APIError(502, "every candidate model failed: " + "; ".join(failures), "upstream_error", None,
                       "provider_failure")
    return texts, finish, fallbacks


def _extra(chat: ChatRequest, result: AskResult, client: LLMClient, fallbacks: list[dict], started: float) -> dict:
    """The "emafusion" field of the response: who answered, what ran, the verdicts, costs and timings."""
    parts = [r for _, _, r in result.parts]
    answered_by = [fb["answered_by"] for fb in fallbacks] if fallbacks else []
    extra = {
        "answered_by": ",".join(answered_by) if answered_by else ",".join(r.answer.model for r in parts),
        "models_run": [m for r in parts for m in r.models_run],
        "path": ",".join(dict.fromkeys(route.path for _, route, _ in result.parts)),
        "verdicts": [{"model": m, "judge": v.judge, "confidence": v.confidence}
                     for r in parts for m, verdicts in r.steps for v in verdicts],
        "cost_usd": {"model": sum(r.model_cost_usd for r in parts), "judge": sum(r.judge_cost_usd for r in parts),
                     "router": sum(r.router_cost_usd for r in parts),
                     "decomposition": result.decomposition_cost_usd, "total": result.cost_usd},
        "budget_cap_usd": chat.cap_usd,
        "spent_usd": client.budget.spent_usd,
        "timing_s": {"answer": time.perf_counter() - started, "in_model_calls": client.record.call_s},
    }
    if len(result.parts) > 1:
        extra["parts"] = [t for t, _, _ in result.parts]
    if fallbacks:
        extra["fallback"] = fallbacks
    return extra
