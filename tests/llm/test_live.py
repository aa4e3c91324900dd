"""The gateway against a real model: SmolLM2-135M served by llama.cpp on loopback, called through litellm."""
from __future__ import annotations

import logging
import secrets

import pytest

from emafusion_core.execution import Query
from emafusion_core.llm import (BadReply, Budget, BudgetExceeded, LiteLLMExecutor, ProviderError, ReplayMiss,
                                Request)
from emafusion_core.llm.local_server import local_llama_server

from gateway_support import MODEL, SMOL_PRICES

pytestmark = pytest.mark.live

ASK = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
P_IN, P_OUT = (p / 1e6 for p in SMOL_PRICES[MODEL])


def test_real_completion_through_litellm(proxy, make_client):
    client = make_client(proxy.api_base)
    reply = client.complete(MODEL, ASK, temperature=0, max_tokens=24)
    assert reply.text.strip() and not reply.cached
    assert reply.finish_reason == "stop"
    assert reply.input_tokens > 5 and 0 < reply.output_tokens <= 24
    assert reply.cost_usd == pytest.approx(reply.input_tokens * P_IN + reply.output_tokens * P_OUT)
    assert reply.reply_id and reply.latency_s > 0
    assert proxy.requests == proxy.forwarded == 1
    assert proxy.bodies[0]["max_tokens"] == 24 and proxy.bodies[0]["temperature"] == 0
    assert client.spent_usd == pytest.approx(reply.cost_usd)


def test_repeat_is_served_from_cache_without_a_request(proxy, make_client):
    client = make_client(proxy.api_base)
    first = client.complete(MODEL, ASK, temperature=0, max_tokens=24)
    second = client.complete(MODEL, ASK, temperature=0.0, max_tokens=24)
    assert proxy.requests == 1
    assert second.cached and (second.text, second.reply_id, second.cost_usd) == (first.text, first.reply_id,
                                                                                  first.cost_usd)
    assert client.stats.hits == 1 and client.stats.calls == 1
    assert client.spent_usd == pytest.approx(first.cost_usd)  # a hit costs this run nothing
    # a new client on the same cache directory (a later session) also hits
    assert make_client(proxy.api_base).complete(MODEL, ASK, temperature=0, max_tokens=24).cached
    assert proxy.requests == 1
    # a changed template version or sampling parameter is a miss
    assert not client.complete(MODEL, ASK, temperature=0, max_tokens=24, template_version="v2").cached
    assert proxy.requests == 2
    assert not client.complete(MODEL, ASK, temperature=0, max_tokens=24, seed=7).cached
    assert proxy.requests == 3


def test_replay_with_empty_cache_fails_cleanly(proxy, make_client):
    client = make_client(proxy.api_base, mode="replay")
    request = Request(MODEL, ASK, {"temperature": 0, "max_tokens": 24})
    with pytest.raises(ReplayMiss) as info:
        client.call(request)
    assert MODEL in str(info.value) and client.key(request) in str(info.value)
    assert info.value.key == client.key(request) and info.value.model == MODEL
    assert proxy.requests == 0 and client.stats.calls == 0


def test_budget_guard_refuses_before_sending(proxy, make_client):
    client = make_client(proxy.api_base, budget=0.01)
    with pytest.raises(BudgetExceeded) as info:
        client.complete(MODEL, ASK, temperature=0, max_tokens=64)  # 64 * $300/M alone is $0.0192
    assert proxy.requests == 0
    assert "$0.010000 cap" in str(info.value) and "$0.000000 is spent" in str(info.value)
    assert client.budget.spent_usd == 0 and client.budget.reserved_usd == 0


def test_budget_holds_under_concurrency(proxy, make_client):
    max_tokens = 8
    from emafusion_core.llm.client import OUTPUT_SLACK_TOKENS

    worst = (max_tokens + OUTPUT_SLACK_TOKENS) * 1e-3  # input is free below, output $1000/M: $0.012 a call
    client = make_client(proxy.api_base, budget=Budget(2.5 * worst), prices={MODEL: (0.0, 1000.0)}, concurrency=8)
    requests = [Request(MODEL, [{"role": "user", "content": f"Name a colour. ({i})"}],
                        {"temperature": 0, "max_tokens": max_tokens}) for i in range(5)]
    results = client.batch(requests)
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(refused) == 3 and proxy.requests == 2
    assert 0 < client.budget.spent_usd <= 2.5 * worst and client.budget.reserved_usd == pytest.approx(0)


def test_truncated_reply_is_charged_but_not_cached(proxy, make_client):
    client = make_client(proxy.api_base)
    with pytest.raises(BadReply) as info:
        client.complete(MODEL, ASK, temperature=0, max_tokens=2)
    assert info.value.kind == "truncated" and info.value.cost_usd > 0 and info.value.text
    assert client.cache.success(info.value.key) is None
    with pytest.raises(BadReply):
        client.complete(MODEL, ASK, temperature=0, max_tokens=2)
    assert proxy.requests == 2  # never served from the cache as a success
    # replay reproduces the recorded failure and its cost, without a call
    with pytest.raises(BadReply) as replayed:
        make_client(proxy.api_base, mode="replay").complete(MODEL, ASK, temperature=0, max_tokens=2)
    assert replayed.value.recorded and replayed.value.cost_usd == pytest.approx(info.value.cost_usd)
    assert proxy.requests == 2


def test_killed_server_retries_then_fails_clearly_and_caches_nothing(make_client, tmp_path):
    with local_llama_server(log_path=tmp_path / "own.log") as server:
        client = make_client(server.api_base)
        assert server.alive()  # it answered /v1/models before the context manager yielded
        server.process.kill()
        server.process.wait()
        request = Request(MODEL, ASK, {"temperature": 0, "max_tokens": 24})
        with pytest.raises(ProviderError) as info:
            client.call(request)
    error = info.value
    assert error.kind == "connection" and error.attempts == 3
    assert client.stats.calls == 3 and client.stats.retries == 2
    assert MODEL in str(error) and error.key in str(error) and "retries exhausted" in str(error)
    assert error.key not in client.cache
    with pytest.raises(ReplayMiss):
        make_client(mode="replay").call(request)


def test_concurrent_calls_respect_the_per_model_limit(proxy, make_client):
    client = make_client(proxy.api_base, concurrency={MODEL: 2})
    requests = [Request(MODEL, [{"role": "user", "content": f"Count to {i}."}], {"temperature": 0, "max_tokens": 2})
                for i in range(5)]
    results = client.batch(requests)  # truncated replies (BadReply) are fine here: only the traffic matters
    assert proxy.requests == 5 and len(results) == 5
    assert proxy.max_inflight == 2  # never more than the limit, and the limit is actually used


def test_logprobs_come_back_and_are_cached(proxy, make_client):
    client = make_client(proxy.api_base)
    reply = client.complete(MODEL, ASK, temperature=0, max_tokens=12, logprobs=True, top_logprobs=2)
    assert reply.logprobs and len(reply.logprobs) == reply.output_tokens
    for item in reply.logprobs:
        assert item["logprob"] <= 0 and len(item["top"]) == 2
        assert item["top"][0][0] == item["token"]  # greedy decoding picks the most likely token
    again = client.complete(MODEL, ASK, temperature=0, max_tokens=12, logprobs=True, top_logprobs=2)
    assert again.cached and again.logprobs == reply.logprobs and proxy.requests == 1


def test_live_executor_runs_queries_like_replay(proxy, make_client):
    executor = LiteLLMExecutor(make_client(proxy.api_base), params={"temperature": 0, "max_tokens": 24},
                               models={"smol": MODEL})
    query = Query("q1", prompt="What is the capital of France? Answer in one word.")
    answer = executor.run(query, "smol")
    assert answer.ok and answer.model == "smol" and answer.query_id == "q1" and not answer.cached
    assert answer.cost_usd > 0 and answer.output_tokens > 0
    again = executor.run(query, "smol")
    assert again.cached and (again.response, again.cost_usd) == (answer.response, answer.cost_usd)
    truncating = LiteLLMExecutor(executor.client, params={"temperature": 0, "max_tokens": 1},
                                 models={"smol": MODEL})
    answers = truncating.run_many([(query, "smol"), (Query("q2", prompt="Hello"), "smol")])
    assert [a.query_id for a in answers] == ["q1", "q2"]
    assert all(not a.ok and a.error.startswith("truncated") and a.cost_usd > 0 for a in answers)
    assert proxy.requests == 3


def test_api_key_never_written(proxy, make_client, caplog):
    key = "sk-emafusion-" + secrets.token_hex(12)
    client = make_client(proxy.api_base, endpoint={"api_key": key})
    caplog.set_level(logging.DEBUG)
    reply = client.complete(MODEL, ASK, temperature=0, max_tokens=24)
    assert proxy.auth_headers == [f"Bearer {key}"]  # the key was really used...
    proxy.queue(401, f'{{"error": {{"message": "Incorrect API key provided: {key}"}}}}')
    with pytest.raises(ProviderError) as info:
        client.complete(MODEL, ASK, temperature=0, max_tokens=25)
    assert info.value.status == 401 and info.value.attempts == 1
    proxy.queue(503, f"upstream rejected {key}", {"Content-Type": "text/plain"}, times=3)
    with pytest.raises(ProviderError) as retried:
        client.complete(MODEL, ASK, temperature=0, max_tokens=26)
    # ...and it appears nowhere we write: exceptions (and their chains), logs, cache files, replies
    for exc in (info.value, retried.value):
        assert key not in str(exc) and key not in repr(exc)
        assert exc.__context__ is None and exc.__cause__ is None
    assert "Incorrect API key provided: ***" in str(info.value)
    assert key not in caplog.text and "retrying" in caplog.text
    assert key not in repr(reply) and key not in str(reply.record())
    files = [p for p in make_client.cache_dir.rglob("*") if p.is_file()]
    assert files and not any(key.encode() in p.read_bytes() for p in files)
