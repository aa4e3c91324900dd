"""`emafusion serve`: an OpenAI-compatible HTTP endpoint in front of a live EMAFusionSystem.

Endpoints: GET /health, GET /v1/models (and /v1/models/{id}), POST /v1/chat/completions. Any OpenAI client
works against it (base_url=http://127.0.0.1:8000/v1, any api_key).

Request. The request text is the content of the LAST user message; earlier turns, system prompts and sampling
parameters (temperature, max_tokens, ...) are accepted and ignored: each pool model runs with the sampling
parameters of the configuration, so that its replies are cached and judged the same way as in `emafusion ask`.
`n` must be 1.

Models. "emafusion" answers under the server's budget only. "emafusion-budget-<usd>" (e.g.
"emafusion-budget-0.01") also caps what this one request may spend: every gateway call of the request
reserves its worst case (prompt + max_tokens) in a per-request Budget chained to the server's Budget, so a
call that might overshoot the cap is never sent. The cascade treats a refused call like a failed one and
stops escalating; if a cheaper candidate had already answered, that answer is returned (the `fallback` entry
of the extra field says why escalation stopped); if nothing could be answered the request gets 402.

Response. An OpenAI chat.completion plus a top-level "emafusion" field: answered_by, models_run, path,
verdicts [{model, judge, confidence}], cost_usd {model, judge, router, decomposition, total}, spent_usd (what
this request charged to the budget: cache hits are free), timing_s {answer, in_model_calls}. `usage` sums
the tokens of every gateway call made for the request (answers, judges, decomposition; cache hits
included, as their cost is). A truncated final answer is returned with finish_reason "length".

Streaming (stream=true). The judged cascade must see a whole answer before it accepts it, so the answer is
produced first and then sent as server-sent events in OpenAI chunk format (a role chunk, word-sized content
chunks, a final chunk with finish_reason and the "emafusion" field, an optional usage chunk when
stream_options.include_usage is set, then `data: [DONE]`). Errors are found before the stream starts and are
returned as ordinary HTTP errors.

Errors, always {"error": {"message", "type", "param", "code"}}: invalid JSON, missing or mistyped fields,
no user message -> 400; body over max_body_bytes -> 413; unknown model -> 404; the per-request cap
refused every call -> 402; the server budget is exhausted -> 429 (insufficient_quota); a provider failure
(every candidate failed) -> 502 with the reason; anything unexpected -> 500. The server keeps serving.

Concurrency. ask() is synchronous: each request runs in Starlette's threadpool. Requests run concurrently;
each gets its own light view of the system (a shallow copy of the LLMClient with its own chained Budget and
its own call record, and fresh executors and judges over it) sharing the fitted router, the disk cache, the
gateway loop, the per-model concurrency limits and the server Budget (thread-safe: a lock around reserve and
settle, so concurrent requests can never jointly overshoot it). Only routing (the encoder and its
embedding store) is serialised, by a lock: it is local and takes milliseconds.
"""
from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .execution import Query
from .llm import Budget, BudgetExceeded, LLMClient, LLMError
from .llm.budget import Hold
from .llm.errors import BadReply
from .llm.types import Request
from .system import EMAFusionSystem

MODEL_ID = "emafusion"
BUDGET_PREFIX = "emafusion-budget-"
_BUDGET_RE = re.compile(r"^emafusion-budget-(\d+(?:\.\d+)?|\.\d+)$")
MAX_BODY_BYTES = 1_000_000
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        return _error(self.status, self.message, self.type, self.param, self.code)


def _error(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status)


# ---- per-request budget and call record ------------------------------------------------------------------


@dataclass
class _ChainHold(Hold):
    parents: list = field(default_factory=list)


class _RequestBudget(Budget):
    """The request's own cap (or none), chained to the server's budgets: a reservation must fit in all."""

    def __init__(self, cap_usd: float | None, parents: list[Budget]):
        # the gateway prices a call's worst case only under a cap: with no cap of its own but a capped
        # parent, the request's cap is infinite (the parent decides)
        if cap_usd is None and any(p.cap_usd is not None for p in parents):
            cap_usd = math.inf
        super().__init__(cap_usd)
        self.request_cap_usd = None if cap_usd == math.inf else cap_usd
        self.parents = parents

    def reserve(self, usd: float, *, model: str = "", key: str = "") -> Hold:
        try:
            own = super().reserve(usd, model=model, key=key)
        except BudgetExceeded as exc:
            exc.scope = "request"
            raise
        held = []
        try:
            for parent in self.parents:
                held.append(parent.reserve(usd, model=model, key=key))
        except BudgetExceeded as exc:
            exc.scope = "server"
            for parent, hold in zip(self.parents, held):
                parent.settle(hold, 0.0)
            super().settle(own, 0.0)
            raise
        return _ChainHold(own.usd, parents=held)

    def settle(self, hold: Hold, actual_usd: float) -> None:
        if hold.settled:
            return
        super().settle(hold, actual_usd)
        for parent, parent_hold in zip(self.parents, getattr(hold, "parents", [])):
            parent.settle(parent_hold, actual_usd)


class _RequestClient(LLMClient):
    """A view of the server's LLMClient for one request: same cache, loop, limits and stats; its own budget
    (chained to the server's) and a record of every call's outcome, for usage and diagnosis."""

    @classmethod
    def view(cls, base: LLMClient, budget: Budget) -> "_RequestClient":
        client = cls.__new__(cls)
        client.__dict__.update(base.__dict__)
        client.budget = budget
        client.outcomes = {}
        client.usage = [0, 0]
        client.call_s = 0.0  # wall time spent inside gateway calls (model, judge, decomposition)
        client.errors = []
        client._record_lock = threading.Lock()
        return client

    def call(self, request: Request):
        started = time.perf_counter()
        try:
            reply = super().call(request)
        except LLMError as exc:
            with self._record_lock:
                self.call_s += time.perf_counter() - started
                self.errors.append(exc)
                self.outcomes[self.key(request)] = exc
                self.usage[0] += getattr(exc, "input_tokens", None) or 0
                self.usage[1] += getattr(exc, "output_tokens", None) or 0
            raise
        with self._record_lock:
            self.call_s += time.perf_counter() - started
            self.outcomes[reply.key] = reply
            self.usage[0] += reply.input_tokens or 0
            self.usage[1] += reply.output_tokens or 0
        return reply


class _LockedRouter:
    def __init__(self, router, lock: threading.Lock):
        self.router, self.lock = router, lock

    def route_batch(self, queries):
        with self.lock:
            return self.router.route_batch(queries)


# ---- request parsing -------------------------------------------------------------------------------------


def _budget_of(model: str) -> float | None:
    """None for "emafusion"; the USD cap for "emafusion-budget-<usd>"; APIError 404 otherwise."""
    if model == MODEL_ID:
        return None
    match = _BUDGET_RE.match(model)
    if match:
        value = float(match.group(1))
        if math.isfinite(value):
            return value
    raise APIError(404, f"The model '{model}' does not exist: use '{MODEL_ID}' or '{BUDGET_PREFIX}<usd>' "
                        f"(e.g. '{BUDGET_PREFIX}0.01')", "invalid_request_error", "model", "model_not_found")


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise APIError(400, f"{where}[{j}]: expected a content part object with a 'type'", param=f"{where}[{j}]")
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise APIError(400, f"{where}[{j}].text: expected a string", param=f"{where}[{j}].text")
                texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        return ""
    raise APIError(400, f"{where}: expected a string or a list of content parts, got {type(content).__name__}",
                   param=where)


@dataclass
class ChatRequest:
    model: str
    text: str
    stream: bool
    include_usage: bool
    cap_usd: float | None


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    if "model" not in body:
        raise APIError(400, "'model' is a required property", param="model", code="missing_required_parameter")
    if not isinstance(body["model"], str):
        raise APIError(400, f"model: expected a string, got {type(body['model']).__name__}", param="model",
                       code="invalid_type")
    if "messages" not in body:
        raise APIError(400, "'messages' is a required property", param="messages", code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise APIError(400, f"messages: expected an array, got {type(messages).__name__}", param="messages",
                       code="invalid_type")
    if not messages:
        raise APIError(400, "messages: expected a non-empty array", param="messages", code="empty_array")
    text = None
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"{where}: expected an object", param=where, code="invalid_type")
        if m.get("role") not in ROLES:
            raise APIError(400, f"{where}.role: expected one of {', '.join(sorted(ROLES))}, got {m.get('role')!r}",
                           param=f"{where}.role", code="invalid_value")
        content = _content_text(m.get("content"), f"{where}.content")
        if m["role"] == "user":
            text = content
    if text is None or not text.strip():
        raise APIError(400, "messages: no user message with text to answer (the last user message is the request)",
                       param="messages", code="invalid_value")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise APIError(400, f"stream: expected a boolean, got {stream!r}", param="stream", code="invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise APIError(400, "stream_options: expected an object", param="stream_options", code="invalid_type")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise APIError(400, f"{name}: expected a positive integer, got {value!r}", param=name, code="invalid_type")
    n = body.get("n", 1)
    if n is not None and n != 1:
        raise APIError(400, f"n: only n=1 is supported, got {n!r}", param="n", code="invalid_value")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise APIError(400, f"{name}: expected a number, got {value!r}", param=name, code="invalid_type")
    cap = _budget_of(body["model"])
    return ChatRequest(body["model"], text, stream, bool(options.get("include_usage")), cap)


# ---- answering -------------------------------------------------------------------------------------------


@dataclass
class Served:
    text: str
    finish_reason: str
    extra: dict
    prompt_tokens: int
    completion_tokens: int


class Server:
    def __init__(self, system: EMAFusionSystem, budget_usd: float | None = None):
        self.system = system
        own = system.client.budget
        self.budget = own if budget_usd is None else Budget(budget_usd)
        self.budgets = [self.budget] if self.budget is own else [self.budget, own]
        self.router = _LockedRouter(system.router, threading.Lock())
        self.requests = 0
        self._count_lock = threading.Lock()

    def answer(self, chat: ChatRequest) -> Served:
        """Run the system for one request (blocking; called in a worker thread). Raises APIError."""
        with self._count_lock:
            self.requests += 1
        started = time.perf_counter()
        client = _RequestClient.view(self.system.client, _RequestBudget(chat.cap_usd, self.budgets))
        view = type(self.system)(self.system.config, self.router, client)
        result = view.ask(chat.text)
        texts, finish, fallbacks, failures = [], "stop", [], []
        for i, (text, route, r) in enumerate(result.parts):
            query = Query(f"request-{i}", text)

            def outcome(model):
                return client.outcomes.get(client.key(view.executor.executors[model].request(query, model)))

            if r.answer.ok:
                texts.append(r.answer.response)
                continue
            final = outcome(r.answer.model)
            if isinstance(final, BadReply) and final.kind == "truncated" and final.text:
                texts.append(final.text)
                finish = "length"
                continue
            earlier = next(((m, o) for m in reversed(r.models_run[:-1])
                            if not isinstance(o := outcome(m), LLMError) and o is not None), None)
            if earlier is not None:
                texts.append(earlier[1].text)
                fallbacks.append({"answered_by": earlier[0], "escalation_failed": r.answer.model,
                                  "reason": r.answer.error})
                continue
            reasons = []
            for m in dict.fromkeys(r.models_run):
                o = outcome(m)
                if isinstance(o, LLMError):
                    reasons.append(f"{m}: {o.kind}: {str(o)[:300]}")
            failures.append("; ".join(reasons) or r.answer.error or "no answer")
        if failures:
            budget_errors = [e for e in client.errors if isinstance(e, BudgetExceeded)]
            final_kinds = {(r.answer.error or "").split(":", 1)[0] for _, _, r in result.parts if not r.answer.ok}
            if budget_errors and final_kinds == {"budget"}:
                if any(getattr(e, "scope", "") == "server" for e in budget_errors):
                    raise APIError(429, "the server's USD budget is exhausted: no model call could be paid for "
                                        f"({failures[0]})", "insufficient_quota", None, "insufficient_quota")
                raise APIError(402, f"the request cannot be answered within its cap of ${chat.cap_usd} "
                                    f"({failures[0]})", "budget_exceeded", "model", "budget_exceeded")
            raise APIError(502, "every candidate model failed: " + "; ".join(failures), "upstream_error", None,
                           "provider_failure")
        from .decompose import join_answers

        text = join_answers(tuple(t for t, _, _ in result.parts), texts)
        parts = [r for _, _, r in result.parts]
        model_usd = sum(r.model_cost_usd for r in parts)
        judge_usd = sum(r.judge_cost_usd for r in parts)
        router_usd = sum(r.router_cost_usd for r in parts)
        answered_by = [fb["answered_by"] for fb in fallbacks] if fallbacks else []
        extra = {
            "answered_by": ",".join(answered_by) if answered_by else ",".join(r.answer.model for r in parts),
            "models_run": [m for r in parts for m in r.models_run],
            "path": ",".join(dict.fromkeys(route.path for _, route, _ in result.parts)),
            "verdicts": [{"model": m, "judge": v.judge, "confidence": v.confidence}
                         for r in parts for m, pv in r.steps if pv is not None for v in pv.verdicts],
            "cost_usd": {"model": model_usd, "judge": judge_usd, "router": router_usd,
                         "decomposition": result.decomposition_cost_usd, "total": result.cost_usd},
            "budget_cap_usd": chat.cap_usd,
            "spent_usd": client.budget.spent_usd,
            "timing_s": {"answer": time.perf_counter() - started, "in_model_calls": client.call_s},
        }
        if len(result.parts) > 1:
            extra["parts"] = [t for t, _, _ in result.parts]
        if fallbacks:
            extra["fallback"] = fallbacks
        return Served(text, finish, extra, client.usage[0], client.usage[1])


def _completion(chat: ChatRequest, served: Served, rid: str, created: int) -> dict:
    return {
        "id": rid, "object": "chat.completion", "created": created, "model": chat.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": served.text},
                     "logprobs": None, "finish_reason": served.finish_reason}],
        "usage": {"prompt_tokens": served.prompt_tokens, "completion_tokens": served.completion_tokens,
                  "total_tokens": served.prompt_tokens + served.completion_tokens},
        "emafusion": served.extra,
    }


def _pieces(text: str) -> list[str]:
    """Word-sized chunks that concatenate back to the text exactly."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def _chunks(chat: ChatRequest, served: Served, rid: str, created: int):
    def event(choices, **more) -> str:
        payload = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": chat.model,
                   "system_fingerprint": None, "choices": choices, **more}
        return f"data: {json.dumps(payload)}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
    for piece in _pieces(served.text):
        yield event([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": served.finish_reason}],
                emafusion=served.extra)
    if chat.include_usage:
        yield event([], usage={"prompt_tokens": served.prompt_tokens, "completion_tokens": served.completion_tokens,
                               "total_tokens": served.prompt_tokens + served.completion_tokens})
    yield "data: [DONE]\n\n"


async def _read_body(request: HTTPRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"request body of {declared} bytes is over the limit of {limit} bytes",
                       "invalid_request_error", None, "request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes", "invalid_request_error",
                           None, "request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(system: EMAFusionSystem, budget_usd: float | None = None, *,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The HTTP app over a built system.

    budget_usd: a USD cap for everything this server spends. None: the system client's own Budget (the
    config's budget_usd) is the server's budget. A number: a new Budget with that cap, on top of the
    client's own (a call must fit in both)."""
    server = Server(system, budget_usd)
    app = FastAPI(title="EMAFusion", description="OpenAI-compatible routing endpoint", docs_url=None,
                  redoc_url=None)
    app.state.server = server
    started = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(_request, exc: APIError):
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc: StarletteHTTPException):
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind, None, None)

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {exc}", "server_error", None, None)

    @app.get("/health")
    async def health():
        b = server.budget
        return {"status": "ok", "requests": server.requests, "spent_usd": b.spent_usd,
                "reserved_usd": b.reserved_usd, "budget_usd": b.cap_usd, "remaining_usd": b.remaining_usd,
                "models": [m.name for m in system.config.models], "router": system.config.router.kind}

    def _model(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": started, "owned_by": "emafusion"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model(MODEL_ID), _model(f"{BUDGET_PREFIX}0.01")]}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str):
        _budget_of(model_id)
        return _model(model_id)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest):
        raw = await _read_body(request, max_body_bytes)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise APIError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None
        chat = parse_chat_request(body)
        served = await run_in_threadpool(server.answer, chat)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if chat.stream:
            return StreamingResponse(_chunks(chat, served, rid, created), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return JSONResponse(_completion(chat, served, rid, created))

    return app
