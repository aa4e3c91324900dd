"""`emafusion serve`: an OpenAI-compatible HTTP endpoint in front of a live EMAFusionSystem.

Endpoints: GET /health, GET /v1/models (and /v1/models/{id}), POST /v1/chat/completions, and GET
/v1/emafusion/self-optimising (read-only: what the self-optimising loop changed, `{"enabled": false}` when it is
off). Any OpenAI client works against it (base_url=http://127.0.0.1:8000/v1, any api_key).

Self-optimising (`self_optimising: {enabled: true}` or `serve --self-optimising`): each answered request's
verdicts are queued and folded into the routers every batch_size requests, by one writer at a time, into a
versioned document in the budget ledger's store that every worker loads before it routes (online_store.py);
exploration purchases go through the request's budget view like any call. The response's "emafusion" field
then carries "self_optimising": the version routed with, the verdicts queued, what was explored, the update.

Request. The request text is the content of the LAST user message; earlier turns, system prompts and sampling
parameters (temperature, max_tokens, ...) are accepted and ignored: each pool model runs with the sampling
parameters of the configuration, so that its replies are cached and judged the same way as in `emafusion ask`.
`n` must be 1.

Models. "emafusion" answers under the server's budget only. "emafusion-budget-<usd>" (e.g.
"emafusion-budget-0.01") also caps what this one request may spend: every gateway call of the request
reserves its worst case (prompt + max_tokens) in the request's ChainedBudget (llm/budget.py), chained to
the server's Budget, so a call that might overshoot the cap is never sent. The cascade treats a refused
call like a failed one and stops escalating; if a cheaper candidate had already answered, that answer is
returned (the `fallback` entry of the extra field says why escalation stopped); if nothing could be answered
the request gets 402.

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

Errors, always {"error": {"message", "type", "param", "code"}}: invalid JSON (JSON nested deeper than 64
levels, strings with lone surrogates included), missing or mistyped fields, no user message -> 400;
`tools`, `tool_choice`, `functions`, `function_call`, `response_format` -> 400 naming the field
(unsupported_parameter: the cascade and its judges work on plain text); a prompt beyond the context window of
every model that could answer -> 400 (context_length_exceeded); body over max_body_bytes -> 413; unknown
model (a budget must be written in ASCII decimal, nothing after it) -> 404; the per-request cap refused every
call -> 402; the server budget refused while calls in flight hold it -> 429 rate_limit_error with
Retry-After (retry); the server budget is spent -> 429 insufficient_quota; a provider failure (every
candidate failed) -> 502 with the reason; the request's deadline passed with nothing paid for to fall back
on -> 504; anything unexpected -> 500. The server keeps serving.

Concurrency. ask() is synchronous: each request runs in Starlette's threadpool. Requests run concurrently;
each gets its own light view of the system: `LLMClient.view` (same cache, loop, per-model concurrency
limits, endpoints and stats; its own ChainedBudget over the server's budgets and its own CallRecord of every
call's outcome) and fresh executors and judges over it, sharing the fitted router. The server's budget
lives in the config's ledger (llm/ledger.py: one atomic update per reserve and settle, on disk beside the cache
or in Redis), so concurrent requests, in one process or in the N processes of `--workers N` (or replicas on one
Redis), can never jointly overshoot the cap, and a restart keeps what was spent.
Only routing (the encoder and its embedding store) is serialised, by a lock: it is local and takes
milliseconds.

Modules: openai.py (request schema and parsing, response, stream and error bodies), answer.py (Server: the
per-request view, the fallback and error mapping, the "emafusion" field), app.py (the FastAPI wiring).
"""
from __future__ import annotations

from .answer import Server
from .app import MAX_BODY_BYTES, create_app
from .openai import BUDGET_PREFIX, MODEL_ID, APIError, ChatRequest, Served, parse_chat_request

__all__ = ["APIError", "BUDGET_PREFIX", "ChatRequest", "MAX_BODY_BYTES", "MODEL_ID", "Served", "Server",
           "create_app", "parse_chat_request"]
