"""Gateway behaviour without a model server: litellm's mock_response for provider failures a local server
cannot produce, canned HTTP replies from a loopback stub, and the small parts (key, budget, prices)."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from emafusion_core.execution import Query
from emafusion_core.llm import (BadReply, Budget, BudgetExceeded, LiteLLMExecutor, PriceUnknown,
                                ProviderError, ReplayMiss, Reply, Request, RetryPolicy, cache_key)
from emafusion_core.llm._litellm import litellm

MOCK = "gpt-4o-mini"  # in litellm's offline price map
HI = [{"role": "user", "content": "hi"}]
JSON = {"type": "json_object"}


class Script:
    """A transport that answers attempt n with outcomes[n] through litellm's own mock_response path."""

    def __init__(self, *outcomes):
        self.outcomes, self.times, self.kwargs = list(outcomes), [], []

    async def __call__(self, **kwargs):
        self.times.append(time.perf_counter())
        self.kwargs.append(kwargs)
        outcome = self.outcomes.pop(0)
        extra = outcome if isinstance(outcome, dict) and "mock_response" in outcome else {"mock_response": outcome}
        return await litellm.acompletion(**{**kwargs, **extra})

    @property
    def calls(self) -> int:
        return len(self.times)


class Status(Exception):
    """An exception litellm's mock path turns into the provider error of that HTTP status."""

    def __init__(self, status_code: int, text: str = "provider says no"):
        super().__init__(text)
        self.status_code, self.text = status_code, text


def shaped(content: str, finish: str = "stop") -> dict:
    """A mock reply of any shape (litellm's mock_response takes a ModelResponse dict)."""
    return {"id": "r", "model": MOCK, "choices": [{"index": 0, "finish_reason": finish,
                                                   "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}


def rate_limited(retry_after: str) -> Exception:
    response = httpx.Response(429, headers={"retry-after": retry_after},
                              request=httpx.Request("POST", "http://provider.invalid/v1/chat/completions"))
    return litellm.RateLimitError(message="slow down", llm_provider="openai", model=MOCK, response=response)


@pytest.fixture
def mock_client(make_client):
    def build(*outcomes, **kw):
        script = Script(*outcomes)
        kw.setdefault("prices", {})
        return make_client(model=MOCK, transport=script, **kw), script
    return build


def expected_mock_cost(p_in: float, p_out: float) -> float:
    return 10 * p_in + 20 * p_out  # litellm's mock usage: 10 prompt and 20 completion tokens


# ---- retries -------------------------------------------------------------------------------------------

def test_429_with_retry_after_is_retried_after_the_wait(mock_client):
    client, script = mock_client(rate_limited("0.4"), "fine")
    reply = client.complete(MOCK, HI, max_tokens=20)
    assert reply.text == "fine" and script.calls == 2 and client.stats.retries == 1
    assert script.times[1] - script.times[0] >= 0.4  # the provider's Retry-After, not our 20 ms backoff
    assert client.complete(MOCK, HI, max_tokens=20).cached and script.calls == 2


def test_429_over_http_reads_retry_after_from_the_response(stub, make_client):
    stub.queue(429, '{"error": {"message": "rate limited"}}', {"Retry-After": "0.3"})
    stub.queue(200, '{"id": "r1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0,'
                    ' "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],'
                    ' "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}')
    client = make_client(stub.api_base)
    started = time.perf_counter()
    reply = client.complete("openai/smollm2", HI, max_tokens=5)
    assert reply.text == "ok" and reply.reply_id == "r1" and stub.requests == 2
    assert time.perf_counter() - started >= 0.3


def test_persistent_429_gives_a_clear_error_and_caches_nothing(mock_client):
    client, script = mock_client(*[rate_limited("0")] * 3)
    with pytest.raises(ProviderError) as info:
        client.complete(MOCK, HI, max_tokens=20)
    assert (info.value.kind, info.value.status, info.value.attempts) == ("rate_limit", 429, 3)
    assert script.calls == 3 and info.value.key not in client.cache
    assert MOCK in str(info.value) and "retries exhausted" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_4xx_are_not_retried(mock_client, status):
    client, script = mock_client(Status(status))
    with pytest.raises(ProviderError) as info:
        client.complete(MOCK, HI, max_tokens=20)
    assert script.calls == 1 and info.value.status == status and info.value.kind == "client_error"
    assert "not retryable" in str(info.value) and info.value.key not in client.cache


def test_5xx_and_timeouts_are_retried(mock_client):
    client, script = mock_client(Status(503), {"mock_response": "x", "mock_timeout": True, "timeout": 0.01},
                                 Status(500), "recovered")
    client.retry = RetryPolicy(max_attempts=4, base_delay_s=0.01)
    assert client.complete(MOCK, HI, max_tokens=20).text == "recovered"
    assert script.calls == 4 and client.stats.retries == 3


def test_malformed_provider_body_is_retried_then_reported(stub, make_client):
    stub.queue(200, "{not json", times=3)
    client = make_client(stub.api_base)
    with pytest.raises(ProviderError) as info:
        client.complete("openai/smollm2", HI, max_tokens=5)
    assert info.value.kind == "malformed_response" and info.value.attempts == 3 and stub.requests == 3
    assert info.value.key not in client.cache


def test_backoff_grows_and_is_jittered():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    import random
    rng = random.Random(0)
    waits = [[policy.delay(a, rng=rng) for _ in range(200)] for a in (1, 2, 3, 4, 5)]
    assert [max(w) <= c for w, c in zip(waits, (1, 2, 4, 8, 8))] == [True] * 5
    assert max(waits[3]) > 4 and len(set(waits[0])) == 200  # grows, and no two callers wait alike
    assert policy.delay(1, retry_after_s=30.0, rng=rng) == 30.0


# ---- replies the gateway must not cache as successes ------------------------------------------------------

def test_malformed_json_reply_is_charged_not_cached_and_replays_as_failure(mock_client, make_client):
    client, script = mock_client("{not json", '{"answer": 4}', prices={MOCK: (1.0, 2.0)})
    with pytest.raises(BadReply) as info:
        client.complete(MOCK, HI, max_tokens=20, response_format=JSON)
    assert info.value.kind == "malformed_json" and info.value.text == "{not json"
    assert info.value.cost_usd == pytest.approx(expected_mock_cost(1e-6, 2e-6))
    assert client.spent_usd == pytest.approx(info.value.cost_usd)
    assert client.cache.success(info.value.key) is None
    replay = make_client(model=MOCK, mode="replay", prices={})
    with pytest.raises(BadReply) as replayed:
        replay.complete(MOCK, HI, max_tokens=20, response_format=JSON)
    assert replayed.value.recorded and replayed.value.cost_usd == pytest.approx(info.value.cost_usd)
    assert client.complete(MOCK, HI, max_tokens=20, response_format=JSON).text == '{"answer": 4}'
    assert script.calls == 2
    assert replay.complete(MOCK, HI, max_tokens=20, response_format=JSON).cached  # a later success wins


def test_json_in_code_fences_is_accepted(mock_client):
    client, _ = mock_client('```json\n{"a": 1}\n```')
    assert client.complete(MOCK, HI, max_tokens=20, response_format=JSON).text.startswith("```json")


def test_reply_rejected_by_the_callers_parser_is_marked_bad(mock_client, make_client):
    client, script = mock_client("the answer is banana", "42")
    reply = client.complete(MOCK, HI, max_tokens=20)
    with pytest.raises(ValueError):
        int(reply.text)  # the caller's parser
    assert client.mark_bad(reply.key)
    with pytest.raises(ReplayMiss, match="marked bad"):
        make_client(model=MOCK, mode="replay", prices={}).complete(MOCK, HI, max_tokens=20)
    again = client.complete(MOCK, HI, max_tokens=20)
    assert again.text == "42" and not again.cached and script.calls == 2
    assert client.complete(MOCK, HI, max_tokens=20).cached


@pytest.mark.parametrize("content, finish, kind", [("", "stop", "empty"), ("   ", "stop", "empty"),
                                                   ("half a sent", "length", "truncated"),
                                                   ("[removed]", "content_filter", "content_filter")])
def test_empty_truncated_filtered_replies_are_not_cached(mock_client, content, finish, kind):
    client, script = mock_client(shaped(content, finish), shaped(content, finish))
    for _ in range(2):
        with pytest.raises(BadReply) as info:
            client.complete(MOCK, HI, max_tokens=20)
        assert info.value.kind == kind and info.value.output_tokens == 20
    assert script.calls == 2 and client.stats.hits == 0


# ---- modes, batches, executor -----------------------------------------------------------------------------

def test_refresh_calls_again_and_overwrites(mock_client, make_client):
    live, _ = mock_client("old")
    assert live.complete(MOCK, HI, max_tokens=20).text == "old"
    refresh, script = mock_client("new", mode="refresh")
    assert refresh.complete(MOCK, HI, max_tokens=20).text == "new" and script.calls == 1
    assert live.complete(MOCK, HI, max_tokens=20).text == "new"


def test_batch_keeps_order_and_returns_failures_in_place(mock_client):
    client, script = mock_client("a", Status(400), "c")
    client.concurrency = 1  # the script answers in call order
    requests = [Request(MOCK, [{"role": "user", "content": c}], {"max_tokens": 20}) for c in "xyz"]
    results = client.batch(requests)
    assert [type(r) for r in results] == [Reply, ProviderError, Reply]
    assert results[0].text == "a" and results[2].text == "c"


def test_identical_requests_in_flight_are_sent_once(mock_client):
    client, script = mock_client({"mock_response": "once", "mock_delay": 0.2})
    request = Request(MOCK, HI, {"max_tokens": 20})
    first, second = client.batch([request, request])
    assert script.calls == 1 and first.text == second.text == "once"
    assert sorted([first.cached, second.cached]) == [False, True]


def test_progress_bar_shows_calls_hits_and_usd(mock_client, capsys):
    client, _ = mock_client("a", "b", prices={MOCK: (1.0, 2.0)}, progress=True)
    client.batch([Request(MOCK, [{"role": "user", "content": c}], {"max_tokens": 20}) for c in "ab"] * 2)
    err = capsys.readouterr().err
    assert "calls=2" in err and "hits=2" in err and "$0.0001" in err


def test_executor_turns_failures_into_answers_with_their_cost(mock_client):
    client, _ = mock_client(Status(400), shaped(""), prices={MOCK: (1.0, 2.0)})
    executor = LiteLLMExecutor(client, params={"max_tokens": 20})
    refused = executor.run(Query("q1", "a"), MOCK)
    assert not refused.ok and refused.error.startswith("client_error") and refused.cost_usd == 0
    empty = executor.run(Query("q2", "b"), MOCK)
    assert empty.error.startswith("empty") and empty.cost_usd == pytest.approx(expected_mock_cost(1e-6, 2e-6))
    broke = LiteLLMExecutor(client, params={"max_tokens": 20}).run(Query("q3", "c"), "unpriced/model")
    assert broke.error.startswith("price_unknown") and broke.cost_usd == 0


# ---- cost and budget ----------------------------------------------------------------------------------------

def test_cost_from_litellm_price_map_and_from_our_table(mock_client):
    client, _ = mock_client("x")
    info = litellm.get_model_info(MOCK)
    cost = client.complete(MOCK, HI, max_tokens=20).cost_usd
    assert cost > 0 and cost == pytest.approx(
        expected_mock_cost(info["input_cost_per_token"], info["output_cost_per_token"]))
    ours, _ = mock_client("x", prices={MOCK: (1000.0, 1000.0)}, cache_name="other")
    assert ours.complete(MOCK, HI, max_tokens=20).cost_usd == pytest.approx(30 * 1e-3)  # our table wins


def test_unknown_price_is_refused_before_sending(mock_client):
    client, script = mock_client("x")
    with pytest.raises(PriceUnknown, match="no price for model 'openai/never-heard-of-it'"):
        client.complete("openai/never-heard-of-it", HI, max_tokens=20)
    assert script.calls == 0


def test_budget_needs_max_tokens_and_reports_spend(mock_client):
    client, script = mock_client("x", budget=1.0)
    with pytest.raises(BudgetExceeded, match="needs max_tokens"):
        client.complete(MOCK, HI)
    assert script.calls == 0


def test_budget_cap_holds_across_threads():
    budget = Budget(1.0)
    holds, refused = [], []

    def grab():
        for _ in range(10):
            try:
                holds.append(budget.reserve(0.03))
            except BudgetExceeded:
                refused.append(1)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(holds) == 33 and len(refused) == 47
    for hold in holds:
        budget.settle(hold, 0.01)
        budget.settle(hold, 0.01)  # settling twice charges once
    assert budget.spent_usd == pytest.approx(0.33) and budget.reserved_usd == pytest.approx(0)


# ---- per-request views ----------------------------------------------------------------------------------------

def test_a_view_shares_the_cache_both_ways(mock_client):
    parent, script = mock_client("parent", "view")
    first = parent.complete(MOCK, HI, max_tokens=20)
    view = parent.view()
    hit = view.complete(MOCK, HI, max_tokens=20)  # the parent's reply, from the shared cache
    assert hit.cached and hit.text == first.text == "parent" and script.calls == 1
    other = [{"role": "user", "content": "other"}]
    assert view.complete(MOCK, other, max_tokens=20).text == "view"
    assert parent.complete(MOCK, other, max_tokens=20).cached and script.calls == 2
    assert view.stats is parent.stats and parent.stats.hits == 2  # one gateway, one set of counters


def test_a_view_has_its_own_budget_chained_to_the_parents(mock_client):
    parent, script = mock_client("a", "b", "c", budget=1.0, prices={MOCK: (1.0, 2.0)})
    cost = expected_mock_cost(1e-6, 2e-6)
    capped = parent.view(budget=1e-9)  # a cap of its own: refused, nothing sent, the parent is untouched
    with pytest.raises(BudgetExceeded) as refused:
        capped.complete(MOCK, HI, max_tokens=20)
    assert refused.value.scope == "request" and script.calls == 0
    first, second = parent.view(), parent.view(budget=0.5)
    first.complete(MOCK, [{"role": "user", "content": "1"}], max_tokens=20)
    second.complete(MOCK, [{"role": "user", "content": "2"}], max_tokens=20)
    assert first.budget is not second.budget and first.budget is not parent.budget
    assert first.spent_usd == pytest.approx(cost) and second.spent_usd == pytest.approx(cost)
    assert parent.spent_usd == pytest.approx(2 * cost) and capped.spent_usd == 0  # both count for the parent
    parent.complete(MOCK, [{"role": "user", "content": "3"}], max_tokens=20)
    assert first.spent_usd == pytest.approx(cost) and parent.spent_usd == pytest.approx(3 * cost)
    poor, _ = mock_client("x", budget=1e-9, cache_name="poor")  # a capped parent caps a view without a cap
    with pytest.raises(BudgetExceeded) as by_parent:
        poor.view().complete(MOCK, HI, max_tokens=20)
    assert by_parent.value.scope == "run"


def test_a_view_keeps_its_own_record_of_every_call(mock_client):
    parent, script = mock_client("a", Status(400), "c")
    parent.concurrency = 1  # the script answers in call order
    view, other = parent.view(), parent.view()
    ok = view.complete(MOCK, HI, max_tokens=20)
    failed = Request(MOCK, [{"role": "user", "content": "fails"}], {"max_tokens": 20})
    with pytest.raises(ProviderError):
        view.call(failed)
    batched = view.batch([Request(MOCK, [{"role": "user", "content": "batched"}], {"max_tokens": 20})])[0]
    hit = view.complete(MOCK, HI, max_tokens=20)
    record = view.record
    assert record.outcomes[ok.key] is hit and record.outcomes[batched.key] is batched
    assert isinstance(record.outcomes[cache_key(failed)], ProviderError)
    assert [type(e) for e in record.errors] == [ProviderError]
    assert record.usage == (30, 60) and record.call_s > 0  # three replies of 10 + 20 tokens (the hit included)
    assert parent.record is None and other.record.outcomes == {} and other.record.usage == (0, 0)
    assert script.calls == 3


def test_views_share_the_per_model_concurrency_limit(mock_client):
    parent, script = mock_client({"mock_response": "x", "mock_delay": 0.3}, {"mock_response": "y", "mock_delay": 0.3})
    parent.concurrency = 1
    views = [parent.view(), parent.view()]
    threads = [threading.Thread(target=v.complete, args=(MOCK, [{"role": "user", "content": str(i)}]),
                                kwargs={"max_tokens": 20}) for i, v in enumerate(views)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert script.calls == 2 and abs(script.times[1] - script.times[0]) >= 0.25  # one after the other


# ---- cache key ------------------------------------------------------------------------------------------------

def test_cache_key_covers_everything_that_changes_the_reply():
    base = Request(MOCK, HI, {"temperature": 0, "max_tokens": 20})
    same = [Request(MOCK, [{"role": "user", "content": "hi"}], {"max_tokens": 20, "temperature": 0.0}),
            Request(MOCK, HI, {"temperature": 0, "max_tokens": 20, "seed": None})]
    different = [Request("gpt-4o", HI, base.params), Request(MOCK, [{"role": "user", "content": "hi!"}], base.params),
                 Request(MOCK, [{"role": "system", "content": "hi"}], base.params),
                 Request(MOCK, HI, {"temperature": 0.1, "max_tokens": 20}),
                 Request(MOCK, HI, {"temperature": 0, "max_tokens": 21}),
                 Request(MOCK, HI, {**base.params, "top_p": 0.9}), Request(MOCK, HI, {**base.params, "logprobs": True}),
                 Request(MOCK, HI, base.params, response_format=JSON),
                 Request(MOCK, HI, base.params, template_version="v2")]
    assert all(cache_key(r) == cache_key(base) for r in same)
    keys = {cache_key(r) for r in different}
    assert len(keys) == len(different) and cache_key(base) not in keys


@pytest.mark.parametrize("setting", ["api_key", "api_base", "timeout", "mock_response"])
def test_call_settings_cannot_leak_into_the_key(setting):
    with pytest.raises(ValueError, match="endpoints"):
        Request(MOCK, HI, {setting: "sk-should-not-be-here"})


# ---- the local server helper -------------------------------------------------------------------------------

def test_local_server_binds_loopback_only_and_finds_the_model():
    from emafusion_core.llm.local_server import local_llama_server, smollm2_gguf

    with pytest.raises(ValueError, match="loopback"):
        with local_llama_server(host="0.0.0.0"):
            pass
    model = smollm2_gguf()
    assert model.suffix == ".gguf" and model.stat().st_size > 50e6
