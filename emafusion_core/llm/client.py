"""The single gateway for every LLM call of the project: cache, budget, retries, concurrency, cost.

Modes: "live" serves cached successes and calls the provider for the rest (recording them); "replay" only
reads the cache and never calls out; "refresh" always calls and overwrites. Calls are async underneath;
the synchronous methods run them on a private loop thread (see _loop.py).
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, MutableMapping, Sequence

from ._loop import LoopThread, shared_loop
from .budget import Budget, ChainedBudget, Hold
from .cache import ResponseCache, cache_key
from .errors import BadReply, BudgetExceeded, DeadlineExceeded, LLMError, ProviderError, ReplayMiss
from .pricing import Pricer
from .redact import Redactor, secrets_in
from .retry import RetryPolicy, classify
from .types import Request, Reply

log = logging.getLogger(__name__)

MODES = ("live", "replay", "refresh")
JSON_FORMATS = ("json_object", "json_schema")
# The input side of a budget reservation is a guaranteed bound, not an estimate: a byte-level BPE or a
# SentencePiece tokenizer with byte fallback never makes more tokens of a text than it has UTF-8 bytes (+1 for
# a dummy prefix), whatever the script or digit grouping. The chat template adds what we cannot see: a few
# tokens per message (role markers, separators) and a fixed part (BOS, generation prompt, a default system
# prompt such as SmolLM2's); both are parameters of the client.
# The output side is max_tokens per choice plus a slack: llama.cpp's server reports max_tokens + 1 completion
# tokens for a reply cut at max_tokens (the end token is counted), and a provider bills what it reports.
PER_MESSAGE_TOKENS, TEMPLATE_TOKENS, OUTPUT_SLACK_TOKENS = 16, 64, 4


def _content_bytes(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content.encode("utf-8", "surrogatepass"))
    if isinstance(content, list):  # content parts: the text of each (others counted as their JSON)
        return sum(_content_bytes(p.get("text")) if isinstance(p, dict) and p.get("type") == "text"
                   else _content_bytes(json.dumps(p, ensure_ascii=False)) for p in content)
    return _content_bytes(json.dumps(content, ensure_ascii=False, default=str))


def input_token_bound(messages: Sequence[Mapping], *, per_message: int = PER_MESSAGE_TOKENS,
                      template: int = TEMPLATE_TOKENS) -> int:
    """An upper bound on the prompt tokens any byte-level tokenizer makes of these messages: the UTF-8 bytes of
    every field (content, role, name, tool calls), plus the chat template's overhead per message and once."""
    total = template
    for m in messages:
        total += per_message + sum(_content_bytes(v) for v in m.values())
    return total

Transport = Callable[..., Awaitable[Any]]


@dataclass
class GatewayStats:
    calls: int = 0  # provider attempts (retries included)
    hits: int = 0  # replies served from the cache
    retries: int = 0
    errors: int = 0  # calls that ended in ProviderError or BadReply
    usd: float = 0.0  # spent by this client on provider calls (cache hits cost nothing)

    def line(self) -> str:
        return f"calls={self.calls} hits={self.hits} err={self.errors} ${self.usd:.4f}"


class CallRecord:
    """What one client (typically a per-request view) asked for and got, kept for usage reports and diagnosis.

    outcomes: cache key -> the Reply or LLMError of the latest call with that key; errors: every LLMError in
    order; input_tokens / output_tokens: summed over every call (cache hits included, as their cost is; a
    failure counts the tokens it reports); call_s: the summed duration of the calls (concurrent calls overlap,
    so this can exceed wall time). Thread-safe."""

    def __init__(self):
        self.outcomes: dict[str, Reply | LLMError] = {}
        self.errors: list[LLMError] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.call_s = 0.0
        self._lock = threading.Lock()

    def add(self, key: str, outcome: Reply | LLMError, seconds: float) -> None:
        with self._lock:
            self.call_s += seconds
            self.outcomes[key] = outcome
            if isinstance(outcome, LLMError):
                self.errors.append(outcome)
            self.input_tokens += getattr(outcome, "input_tokens", None) or 0
            self.output_tokens += getattr(outcome, "output_tokens", None) or 0

    @property
    def usage(self) -> tuple[int, int]:
        """(input tokens, output tokens)."""
        return self.input_tokens, self.output_tokens


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _logprobs(choice: Any) -> list[dict] | None:
    content = _field(_field(choice, "logprobs"), "content")
    if not content:
        return None
    return [{"token": _field(item, "token"), "logprob": float(_field(item, "logprob")),
             "top": [[_field(t, "token"), float(_field(t, "logprob"))] for t in _field(item, "top_logprobs") or []]}
            for item in content]


def _earliest(deadline: float | None, seconds: float) -> float:
    own = time.monotonic() + seconds
    return own if deadline is None else min(deadline, own)


def _usage_count(usage: Any, name: str) -> int | None:
    """A reported token count, or None if missing or not a non-negative integer."""
    value = _field(usage, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        return None
    return int(value)


def _strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


class LLMClient:
    """One litellm gateway.

    cache: a diskcache.Cache (or any mutable mapping, or a ResponseCache); the caller owns its directory.
    pricer: rates per model (our table, then litellm's offline map). budget: a Budget or a USD cap.
    endpoints: per-model call settings kept out of cache keys, e.g. {"openai/smollm2": {"api_base": ...,
      "api_key": ...}}; an entry may also rename the model for litellm ("model": "openai/..."). API keys
      otherwise come from the environment the litellm way (OPENAI_API_KEY, ...).
    concurrency: calls in flight per model (an int, or a mapping with an optional "*" default).
    transport: the async completion function (default litellm.acompletion); tests inject faults here.
    loop: the LoopThread that runs the blocking methods (default: one shared by the process).
    record: a CallRecord that notes the outcome of every call (default None: nothing is kept per call).
    reuse_failures: in live mode, a charged bad reply already in the cache (truncated, empty, ...) is that
      request's outcome: raised again as the recorded BadReply at no cost, not asked again (collection: a rerun
      pays for nothing it already paid for). Replay mode always does this.

    `view()` makes a client for one request (or any unit of work) that shares this one's cache and
    everything about how calls are made, with its own budget and its own CallRecord.
    """

    def __init__(self, cache: ResponseCache | MutableMapping, *, mode: str = "live", pricer: Pricer | None = None,
                 budget: Budget | float | None = None, retry: RetryPolicy | None = None,
                 concurrency: int | Mapping[str, int] = 4, endpoints: Mapping[str, Mapping] | None = None,
                 timeout_s: float = 120.0, transport: Transport | None = None, progress: bool = True,
                 rng: random.Random | None = None, loop: LoopThread | None = None,
                 record: CallRecord | None = None, deadline: float | None = None,
                 template_tokens: int = TEMPLATE_TOKENS,
                 per_message_tokens: int = PER_MESSAGE_TOKENS, reuse_failures: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.mode = mode
        self.pricer = pricer or Pricer()
        self.budget = budget if isinstance(budget, Budget) else Budget(budget)
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.endpoints = {model: dict(settings) for model, settings in (endpoints or {}).items()}
        self.timeout_s = timeout_s
        self._transport = transport
        self.progress = progress
        self.stats = GatewayStats()
        self._rng = rng or random.Random()
        self._redact = Redactor(secrets_in(self.endpoints))
        self._loop = loop or shared_loop()  # the caller's (or the process's) to close, as is the cache
        self.record = record
        self._spent, self._spent_lock = 0.0, threading.Lock()  # what this client's calls charged (spent_usd)
        self._parent: LLMClient | None = None  # the client this one is a view of
        self.deadline = deadline  # time.monotonic() after which no call of this client is sent or waited for
        self.template_tokens, self.per_message_tokens = int(template_tokens), int(per_message_tokens)
        self.reuse_failures = reuse_failures
        # per event loop: the per-model semaphores, and the calls in flight by cache key (shared by views)
        self._limits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._inflight: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def view(self, *, budget: Budget | float | None = None, record: CallRecord | None = None,
             deadline_s: float | None = None) -> "LLMClient":
        """A client for one unit of work (e.g. one server request) over this client's gateway.

        Shared with this client: the cache, mode, pricer, retry policy, endpoints, timeout, transport, loop,
        the per-model concurrency limits and the de-duplication of identical calls in flight (so views
        together never exceed a model's limit), and the GatewayStats (they count for the whole gateway).
        Its own: the budget and the CallRecord (a fresh one unless given).

        budget: a Budget, used as it is (chain it to this client's budget yourself, e.g. with
          ChainedBudget); or a USD cap or None: a ChainedBudget(cap, [this client's budget]), so that what
          the view spends also counts against this client's cap and the view can never overshoot it.
        deadline_s: seconds from now after which the view's calls stop (each attempt's timeout is cut to what
          is left; no retry starts after it): a DeadlineExceeded then. None: this client's deadline, if any."""
        if not isinstance(budget, Budget):
            budget = ChainedBudget(budget, [self.budget])
        view = type(self)(self.cache, mode=self.mode, pricer=self.pricer, budget=budget, retry=self.retry,
                          concurrency=self.concurrency, endpoints=self.endpoints, timeout_s=self.timeout_s,
                          transport=self._transport, progress=self.progress, rng=self._rng, loop=self._loop,
                          record=CallRecord() if record is None else record, template_tokens=self.template_tokens,
                          deadline=self.deadline if deadline_s is None else _earliest(self.deadline, deadline_s),
                          per_message_tokens=self.per_message_tokens, reuse_failures=self.reuse_failures)
        view.stats = self.stats
        view._parent = self
        view._limits, view._inflight = self._limits, self._inflight
        return view

    # ---- public API -------------------------------------------------------------------------------------

    def complete(self, model: str, messages: list[dict], *, template_version: str = "",
                 response_format: dict | None = None, **params) -> Reply:
        """One chat completion (blocking). Raises an LLMError subclass on failure."""
        return self.call(Request(model, messages, params, response_format, template_version))

    async def acomplete(self, model: str, messages: list[dict], *, template_version: str = "",
                        response_format: dict | None = None, **params) -> Reply:
        return await self.acall(Request(model, messages, params, response_format, template_version))

    def call(self, request: Request) -> Reply:
        started = time.perf_counter()
        try:
            reply = None
            if self.mode != "refresh":  # a cache hit needs no event loop
                reply = self._lookup(request, cache_key(request))
            if reply is None:
                reply = self._loop.run(self._acall(request))
        except LLMError as exc:
            self._note(request, exc, started)
            raise
        self._note(request, reply, started)
        return reply

    async def acall(self, request: Request) -> Reply:
        started = time.perf_counter()
        try:
            reply = await self._acall(request)
        except LLMError as exc:
            self._note(request, exc, started)
            raise
        self._note(request, reply, started)
        return reply

    def _note(self, request: Request, outcome: Reply | LLMError, started: float) -> None:
        if self.record is not None:
            key = outcome.key if isinstance(outcome, Reply) else cache_key(request)
            self.record.add(key, outcome, time.perf_counter() - started)

    async def _acall(self, request: Request) -> Reply:
        key = cache_key(request)
        if self.mode != "refresh":
            hit = self._lookup(request, key)
            if hit is not None:
                return hit
        inflight = self._inflight.setdefault(asyncio.get_running_loop(), {})
        while key in inflight:  # the same request is already on its way: share its outcome if it cannot differ
            future, budget = inflight[key]
            try:
                reply = await asyncio.shield(future)
            except LLMError as exc:
                # a failure is shared only with calls on the same budget chain, and a budget refusal never is
                # (another request's cap or timing says nothing about ours): then we make our own call
                if budget is self.budget and not isinstance(exc, BudgetExceeded):
                    raise
                continue
            except asyncio.CancelledError:
                if future.cancelled():  # the leader was cancelled (its request's deadline), not us
                    continue
                raise
            self.stats.hits += 1
            return dataclasses.replace(reply, cached=True)
        future = asyncio.get_running_loop().create_future()
        inflight[key] = (future, self.budget)
        try:
            reply = await self._fetch(request, key)
            future.set_result(reply)
            return reply
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            inflight.pop(key, None)

    def stop_loop(self) -> None:
        """Cancel whatever still runs on this client's loop thread and stop it (after an interrupt: nothing of
        ours then runs on into the interpreter's exit). A later blocking call starts the loop again."""
        self._loop.close()

    def batch(self, requests: Sequence[Request], *, desc: str = "llm", return_exceptions: bool = True
              ) -> list[Reply | LLMError]:
        """Many requests concurrently (per-model limits apply); results in input order.

        With return_exceptions (the default) a failed request yields its LLMError in place, so one failure
        never loses the rest of the batch."""
        return self._loop.run(self.abatch(requests, desc=desc, return_exceptions=return_exceptions))

    async def abatch(self, requests: Sequence[Request], *, desc: str = "llm", return_exceptions: bool = True
                     ) -> list[Reply | LLMError]:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), desc=desc, disable=not self.progress, unit="req")

        async def one(request: Request):
            try:
                return await self.acall(request)
            except LLMError as exc:
                if not return_exceptions:
                    raise
                return exc
            finally:
                bar.update(1)
                bar.set_postfix_str(self.stats.line(), refresh=False)

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            bar.set_postfix_str(self.stats.line())
            bar.close()

    def mark_bad(self, key: str, reason: str = "rejected by the caller's parser") -> bool:
        """Never serve this cached reply again: live mode re-asks, replay mode reports it as a miss."""
        return self.cache.mark_bad(key, reason)

    def key(self, request: Request) -> str:
        return cache_key(request)

    @property
    def spent_usd(self) -> float:
        """What the calls of this client and of its views charged to their budgets. Not the budget's total:
        that may live in a ledger shared with other processes and earlier runs (budget.spent_usd)."""
        return self._spent

    # ---- internals --------------------------------------------------------------------------------------

    def _lookup(self, request: Request, key: str) -> Reply | None:
        """A cached success, or None; in replay mode a miss is an error (nothing is ever sent)."""
        record = self.cache.record(key)
        status = record.get("status") if record else None
        if status == "ok":
            self.stats.hits += 1
            return Reply.from_record(record, cached=True)
        if self.mode != "replay" and not (status == "failed" and self.reuse_failures):
            return None
        if status == "failed":  # replay the recorded failure, with the cost it had
            if self.reuse_failures:
                self.stats.hits += 1
            raise BadReply(f"replay: recorded {record.get('problem')} reply from {request.model!r} (key {key})",
                           kind=record.get("problem", "bad_reply"), text=record.get("text"),
                           input_tokens=record.get("input_tokens"), output_tokens=record.get("output_tokens"),
                           recorded=True, model=request.model, key=key, cost_usd=record.get("cost_usd", 0.0))
        reason = f"the cached reply was marked bad ({record.get('bad_reason')})" if status == "bad" \
            else "no cached reply"
        raise ReplayMiss(f"replay mode: {reason} for model {request.model!r}, key {key}; "
                         "run in live mode to record it", model=request.model, key=key)

    def _semaphore(self, model: str) -> asyncio.Semaphore:
        per_loop = self._limits.setdefault(asyncio.get_running_loop(), {})
        if model not in per_loop:
            limits = self.concurrency
            limit = limits.get(model, limits.get("*", 4)) if isinstance(limits, Mapping) else limits
            per_loop[model] = asyncio.Semaphore(max(1, int(limit)))
        return per_loop[model]

    async def _fetch(self, request: Request, key: str) -> Reply:
        async with self._semaphore(request.model):
            if self.mode != "refresh":  # filled while we queued?
                hit = self._lookup(request, key)
                if hit is not None:
                    return hit
            hold = self._reserve(request, key)
            cost = 0.0
            try:
                response, latency, _attempts = await self._send(request, key)
                reply = self._parse(response, request, key, latency)
                cost = reply.cost_usd
            except DeadlineExceeded as exc:
                if exc.sent:  # abandoned on its way: the provider may bill it, so its worst case is charged
                    cost = exc.cost_usd = hold.usd
                raise
            finally:
                overshoot = self.budget.settle(hold, cost)
                self._charged((cost if cost >= 0 else hold.usd if hold.bounded else 0.0) - overshoot)
                self.stats.usd += cost
                if overshoot > 0:
                    log.warning("%s reported usage costing $%.6f, over the $%.6f reserved for its worst case "
                                "(key %s): the budget was charged the reservation and the excess counted as "
                                "overshoot", request.model, cost, hold.usd, key)
        problem = self._problem(reply, request)
        if problem is not None:
            self.stats.errors += 1
            self.cache.put_failure(key, {**reply.record(), "problem": problem})
            raise BadReply(f"{problem} reply from {request.model!r} (key {key}, finish_reason "
                           f"{reply.finish_reason!r}, {reply.output_tokens} output tokens): not cached as a success",
                           kind=problem, text=reply.text, input_tokens=reply.input_tokens,
                           output_tokens=reply.output_tokens, model=request.model, key=key, cost_usd=cost)
        self.cache.put_success(key, reply.record())
        return reply

    def _charged(self, usd: float) -> None:
        """Count a settled charge here and in every client this one is a view of (spent_usd)."""
        client = self
        while client is not None:
            with client._spent_lock:
                client._spent += usd
            client = client._parent

    def _litellm_model(self, model: str) -> str:
        return self.endpoints.get(model, {}).get("model", model)

    def _reserve(self, request: Request, key: str) -> Hold:
        """Price the worst case before sending; PriceUnknown or BudgetExceeded mean nothing is sent."""
        try:
            r_in, r_out = self.pricer.rates(request.model)
        except LLMError as exc:
            exc.key = key
            raise
        max_out = self._output_bound(request)
        if max_out is None:
            if self.budget.capped:
                raise BudgetExceeded(f"a call under a budget cap needs max_tokens (model {request.model!r}, "
                                     f"key {key}): without it the worst case is unbounded", model=request.model,
                                     key=key)
            return self.budget.reserve(0.0, model=request.model, key=key, bounded=False)
        worst = self._input_bound(request) * r_in + max_out * r_out
        return self.budget.reserve(worst, model=request.model, key=key)

    def _input_bound(self, request: Request) -> int:
        """A guaranteed upper bound on the prompt tokens (see input_token_bound)."""
        return input_token_bound(request.messages, per_message=self.per_message_tokens,
                                 template=self.template_tokens)

    @staticmethod
    def _output_bound(request: Request) -> int | None:
        params = request.params
        max_out = params.get("max_tokens") or params.get("max_completion_tokens")
        return None if max_out is None else (int(max_out) + OUTPUT_SLACK_TOKENS) * int(params.get("n") or 1)

    def _call_kwargs(self, request: Request) -> dict:
        settings = dict(self.endpoints.get(request.model, {}))
        kwargs = {"model": settings.pop("model", request.model), "messages": request.messages,
                  **request.params, "timeout": self.timeout_s, "num_retries": 0, "max_retries": 0}
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        kwargs.update(settings)
        return kwargs

    async def _send(self, request: Request, key: str):
        """The provider call with retries; returns (response, latency of the successful attempt, attempts)."""
        transport = self._transport
        if transport is None:
            from ._litellm import litellm

            transport = litellm.acompletion
        kwargs = self._call_kwargs(request)
        policy = self.retry
        for attempt in range(1, policy.max_attempts + 1):
            left = self._time_left(request, key, attempt)
            # the per-call timeout, cut to what the deadline leaves; enforced here too (a frozen connection)
            kwargs["timeout"] = self.timeout_s if left is None else min(self.timeout_s, left)
            self.stats.calls += 1
            started = time.perf_counter()
            error = None
            try:
                return (await asyncio.wait_for(transport(**kwargs), kwargs["timeout"]),
                        time.perf_counter() - started, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below; bugs are re-raised
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    self.stats.errors += 1
                    error = DeadlineExceeded(f"{request.model!r}: the deadline passed during attempt {attempt} "
                                             f"(key {key}); nothing cached", sent=True, model=request.model, key=key)
                else:
                    failure = classify(exc)
                    if failure is None:
                        raise
                    detail = self._redact(exc)
                    if not failure.retryable or attempt == policy.max_attempts:
                        self.stats.errors += 1
                        why = "not retryable" if not failure.retryable else "retries exhausted"
                        # built here, raised outside the except block: the provider's exception (which may
                        # quote a key) must not ride along as __context__
                        error = ProviderError(
                            f"{request.model!r} failed: {failure.kind} (status {failure.status}) after {attempt} "
                            f"attempt(s), {why}; key {key}; nothing cached. Provider said: {detail}",
                            kind=failure.kind, status=failure.status, attempts=attempt, model=request.model, key=key)
                    else:
                        wait = policy.delay(attempt, failure.retry_after_s, self._rng)
                        if self.deadline is not None and time.monotonic() + wait >= self.deadline:
                            self.stats.errors += 1
                            error = DeadlineExceeded(
                                f"{request.model!r} failed: {failure.kind} (status {failure.status}) on attempt {attempt} "
                                f"and the deadline leaves no time to retry (key {key}); nothing cached",
                                model=request.model, key=key)
                        else:
                            log.warning("%s: %s (status %s) on attempt %d/%d, retrying in %.2f s",
                                        request.model, failure.kind, failure.status, attempt, policy.max_attempts, wait)
                            self.stats.retries += 1
            if error is not None:
                raise error
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _time_left(self, request: Request, key: str, attempt: int) -> float | None:
        """Seconds until the deadline (None: no deadline); DeadlineExceeded if it has passed."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"{request.model!r}: the deadline passed before attempt {attempt} (key {key})",
                                   model=request.model, key=key)
        return left

    def _parse(self, response: Any, request: Request, key: str, latency: float) -> Reply:
        choices = _field(response, "choices") or []
        choice = choices[0] if choices else None
        text = _field(_field(choice, "message"), "content") if choice is not None else None
        usage = _field(response, "usage")
        in_tok, out_tok = _usage_count(usage, "prompt_tokens"), _usage_count(usage, "completion_tokens")
        # litellm fills a missing usage with zeros: no prompt is 0 tokens, no non-empty reply is 0 tokens
        if in_tok == 0:
            in_tok = None
        if out_tok == 0 and text:
            out_tok = None
        if in_tok is None:  # a missing (or nonsensical) usage counts as the worst case that was reserved
            in_tok = self._input_bound(request)
        if out_tok is None:
            out_tok = self._output_bound(request)
            if out_tok is None:
                from ._litellm import litellm

                out_tok = litellm.token_counter(model=self._litellm_model(request.model), text=text or "")
        cost = self.pricer.cost(request.model, int(in_tok), int(out_tok))
        # a reply that quotes a configured key is masked here, before anything caches, judges or logs it
        return Reply(key=key, model=request.model, text=self._redact.values(text or ""), input_tokens=int(in_tok),
                     output_tokens=int(out_tok), cost_usd=cost, latency_s=latency,
                     reply_id=_field(response, "id"), finish_reason=_field(choice, "finish_reason"),
                     logprobs=_logprobs(choice) if choice is not None else None, created_at=time.time())

    @staticmethod
    def _problem(reply: Reply, request: Request) -> str | None:
        """Why a reply must not be cached as a success, or None."""
        if reply.finish_reason == "length":
            return "truncated"
        if reply.finish_reason == "content_filter":
            return "content_filter"
        if not reply.text.strip():
            return "empty"
        if (request.response_format or {}).get("type") in JSON_FORMATS:
            try:
                json.loads(_strip_fences(reply.text))
            except ValueError:
                return "malformed_json"
        return None
