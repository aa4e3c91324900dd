"""`emafusion serve` with real clients (the official openai package and litellm) against the real local SmolLM2
behind the counting proxy: completions, streaming, model listing, the failure paths and their status codes,
the per-request and per-server USD budgets, and concurrent requests."""
from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import diskcache
import httpx
import pytest
import uvicorn
import yaml

import emafusion_core  # noqa: F401 - sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported
from emafusion_core.config import parse_config
from emafusion_core.llm.local_server import free_port
from emafusion_core.server import create_app
from emafusion_core.system import EMAFusionSystem, make_client, operating_point
from gateway_support import FAST_RETRY

pytestmark = pytest.mark.live
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local.yaml"


def _config(api_base: str, cache_dir: Path, budget: float | None = 0.5):
    doc = yaml.safe_load(EXAMPLE.read_text())
    for m in doc["models"]:
        m["api_base"] = api_base
        m["max_tokens"] = 64
    doc["cache_dir"] = str(cache_dir)
    doc["router"]["kind"] = "learned"  # both models are candidates: a judged step, then maybe escalation
    doc["budget_usd"] = budget
    return parse_config(doc)


@contextlib.contextmanager
def serving(app):
    """uvicorn in a background thread on a free loopback port; yields the base URL (…/v1)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def system(_session_proxy, tmp_path_factory):
    config = _config(_session_proxy.api_base, tmp_path_factory.mktemp("server-cache"))
    cache = diskcache.Cache(config.cache_dir)
    built = EMAFusionSystem.build(config, client=make_client(config, cache))  # ~7 s: once per module
    yield built
    cache.close()


@pytest.fixture(scope="module")
def base_url(system):
    with serving(create_app(system, None)) as url:
        yield url


def _openai(base_url: str):
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=120)


def _post(base_url: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{base_url}/chat/completions", content=content, timeout=120,
                      headers={"Content-Type": "application/json"}, **kw)


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def _healthy(base_url: str) -> None:
    health = httpx.get(base_url.removesuffix("/v1") + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_openai_client_completion_stream_and_models(base_url, proxy):
    client = _openai(base_url)
    assert {m.id for m in client.models.list()} == {"emafusion", "emafusion-budget-0.01"}
    question = "Answer in one word. What is the capital of France?"
    reply = client.chat.completions.create(
        model="emafusion", max_tokens=64,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}])
    assert reply.object == "chat.completion" and reply.model == "emafusion"
    content = reply.choices[0].message.content
    assert content.strip() and reply.choices[0].finish_reason in ("stop", "length")
    extra = reply.model_extra["emafusion"]
    assert extra["path"] == "learned" and extra["models_run"][0] == "small"
    assert extra["answered_by"] in extra["models_run"]
    # the small model's answer was judged by the configured panel: the fitted verifier and the small LLM judge
    assert {(v["model"], v["judge"]) for v in extra["verdicts"]} in (set(), {("small", "verifier"), ("small", "llm:small")})
    cost = extra["cost_usd"]
    assert cost["total"] > 0 and cost["total"] == pytest.approx(cost["model"] + cost["judge"] + cost["router"]
                                                                  + cost["decomposition"])
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert proxy.requests >= 2  # the answer and its judge really reached the model server

    chunks = list(client.chat.completions.create(model="emafusion", messages=[{"role": "user", "content": question}],
                                                 stream=True, stream_options={"include_usage": True}))
    # same request: the answers come from the cache (a judge reply without a rating is re-asked), same text
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == content and len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [reply.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == reply.usage.total_tokens


def test_stream_ends_with_done(base_url):
    with httpx.stream("POST", f"{base_url}/chat/completions", timeout=120, json={
            "model": "emafusion", "stream": True,
            "messages": [{"role": "user", "content": "Answer in one word. What is the capital of France?"}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    last = json.loads(lines[-2][len("data: "):])
    assert last["object"] == "chat.completion.chunk" and "answered_by" in last["emafusion"]


def test_litellm_as_a_client(base_url):
    import litellm

    reply = litellm.completion(model="openai/emafusion", api_base=base_url, api_key="none", max_tokens=64,
                               messages=[{"role": "user", "content": "Answer in one word. What colour is the sky?"}])
    assert reply.choices[0].message.content.strip()
    assert reply.usage.total_tokens > 0


def test_bad_requests_get_openai_style_errors(base_url, proxy):
    user = [{"role": "user", "content": "hi"}]
    assert _error(_post(base_url, b"{not json"), 400)["code"] == "invalid_json"
    assert _error(_post(base_url, {"model": "emafusion"}), 400)["param"] == "messages"
    assert _error(_post(base_url, {"messages": user}), 400)["param"] == "model"
    assert _error(_post(base_url, {"model": "emafusion", "messages": []}), 400)["param"] == "messages"
    assert _error(_post(base_url, {"model": "emafusion", "messages": "hi"}), 400)["param"] == "messages"
    assert _error(_post(base_url, {"model": 3, "messages": user}), 400)["param"] == "model"
    assert _error(_post(base_url, {"model": "emafusion", "messages": [{"role": "user", "content": 5}]}),
                  400)["param"] == "messages[0].content"
    assert _error(_post(base_url, {"model": "emafusion", "messages": [{"role": "system", "content": "x"}]}),
                  400)["param"] == "messages"
    assert _error(_post(base_url, {"model": "emafusion", "messages": user, "stream": "yes"}), 400)["param"] == "stream"
    assert _error(_post(base_url, [1, 2]), 400)["type"] == "invalid_request_error"
    huge = {"model": "emafusion", "messages": [{"role": "user", "content": "x" * 1_500_000}]}
    assert _error(_post(base_url, huge), 413)["code"] == "request_too_large"
    assert _error(_post(base_url, {"model": "gpt-4o", "messages": user}), 404)["code"] == "model_not_found"
    assert _error(_post(base_url, {"model": "emafusion-budget-lots", "messages": user}), 404)["param"] == "model"
    assert _error(httpx.get(f"{base_url}/nowhere", timeout=10), 404)
    assert proxy.requests == 0  # nothing bad ever reached a model
    _healthy(base_url)

    from openai import BadRequestError, NotFoundError

    client = _openai(base_url)
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=user)
    with pytest.raises(BadRequestError):
        client.chat.completions.create(model="emafusion", messages=[])


def test_per_request_budget(base_url, proxy):
    from openai import APIStatusError

    client = _openai(base_url)
    with pytest.raises(APIStatusError) as refused:  # not even the cheapest call fits: nothing is sent
        client.chat.completions.create(model="emafusion-budget-0.000001",
                                       messages=[{"role": "user", "content": "Name a fruit."}])
    assert refused.value.status_code == 402 and "cap" in refused.value.message
    assert proxy.requests == 0
    cap = 0.0005  # the small model and its judge fit; an escalation to the large model (~0.003 worst case) does not
    reply = client.chat.completions.create(model=f"emafusion-budget-{cap}",
                                           messages=[{"role": "user", "content": "Name a colour. One word."}])
    extra = reply.model_extra["emafusion"]
    assert reply.choices[0].message.content.strip() and extra["answered_by"] == "small"
    assert 0 < extra["spent_usd"] <= cap and proxy.requests >= 1


def test_provider_failure_is_502_and_the_server_keeps_serving(system, tmp_path, base_url):
    dead = _config(f"http://127.0.0.1:{free_port()}/v1", tmp_path / "cache")
    cache = diskcache.Cache(dead.cache_dir)
    client = make_client(dead, cache)
    client.retry = FAST_RETRY
    broken = EMAFusionSystem(dead, system.method, system.point, client)  # the fitted method, a pool nobody listens for
    with serving(create_app(broken, None)) as url:
        error = _error(_post(url, {"model": "emafusion", "messages": [{"role": "user", "content": "hi"}]}), 502)
        assert error["code"] == "provider_failure" and "small" in error["message"] and "large" in error["message"]
        _healthy(url)
        assert _error(_post(url, {"model": "emafusion", "messages": []}), 400)
    cache.close()
    _healthy(base_url)


QUESTIONS = ["Name a planet.", "Name an animal.", "Name a city.", "Name a tree.", "Name a metal.", "Name a river."]


def test_concurrent_requests_all_succeed(system, proxy):
    with serving(create_app(system, 1.0)) as url:
        client = _openai(url)

        def ask(q):
            return client.chat.completions.create(model="emafusion", messages=[{"role": "user", "content": q}])

        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(ask, QUESTIONS[:4]))
        health = httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()
    assert all(r.choices[0].message.content.strip() for r in replies)
    assert proxy.max_inflight >= 2  # requests really ran side by side, not one after the other
    assert 0 < health["spent_usd"] <= 1.0 and health["reserved_usd"] == pytest.approx(0, abs=1e-12)
    assert health["requests"] == 4


def test_server_budget_below_any_call_refuses_every_request_with_429(system, proxy):
    cap = 1e-6  # below the worst case of the cheapest call (the small model: about 3e-5 USD): nothing fits
    with serving(create_app(system, cap)) as url:
        user = [[{"role": "user", "content": f"{q} Answer with the name only."}] for q in QUESTIONS]  # uncached
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda m: _post(url, {"model": "emafusion", "messages": m}), user))
        health = httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()
        _healthy(url)
    for r in responses:
        error = _error(r, 429)
        assert error["code"] == error["type"] == "insufficient_quota" and "server budget refused" in error["message"]
    assert proxy.requests == 0 and health["requests"] == len(QUESTIONS)
    assert health["spent_usd"] == 0 and health["reserved_usd"] == pytest.approx(0, abs=1e-12)


def test_server_budget_stops_escalation_and_returns_the_answer_paid_for(system, proxy):
    """Under concurrency, with a server cap that every small-model call fits (six requests' worst cases at
    once) and no large-model call does (its max_tokens alone cost more): each request gets the small model's
    answer, the large judge's verdict and the escalation both refused, and says so in `fallback`."""
    judged_by_large = replace(system.config, cascade=replace(system.config.cascade, judges=("llm:large",)))
    large_judge = EMAFusionSystem(judged_by_large, system.method, operating_point(judged_by_large), system.client)
    cap = 0.001  # small: about 3e-5 worst case per call; large: 64 tokens x 30 USD/Mtok = 0.0019 before any input
    with serving(create_app(large_judge, cap)) as url:
        user = [[{"role": "user", "content": f"{q} Just the name."}] for q in QUESTIONS]
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda m: _post(url, {"model": "emafusion", "messages": m}), user))
        health = httpx.get(url.removesuffix("/v1") + "/health", timeout=10).json()
        _healthy(url)
    assert [r.status_code for r in responses] == [200] * len(QUESTIONS), [r.text for r in responses]
    for r in responses:
        body = r.json()
        extra = body["emafusion"]
        assert body["choices"][0]["message"]["content"].strip()
        assert extra["answered_by"] == "small" and extra["models_run"] == ["small", "large"]
        assert extra["verdicts"] == [{"model": "small", "judge": "llm:large", "confidence": None}]
        [fallback] = extra["fallback"]
        assert fallback["answered_by"] == "small" and fallback["escalation_failed"] == "large"
        assert fallback["reason"].startswith("budget: server budget refused a call to 'large'")
        assert extra["cost_usd"]["judge"] == 0 and 0 < extra["spent_usd"] == pytest.approx(extra["cost_usd"]["model"])
    assert proxy.requests == len(QUESTIONS)  # only the small model's answers were ever sent
    assert proxy.max_inflight >= 2  # the requests really ran side by side
    assert 0 < health["spent_usd"] <= cap and health["reserved_usd"] == pytest.approx(0, abs=1e-12)


def test_malformed_input_is_400_however_deep_or_oddly_encoded(base_url, proxy):
    """Issue 15, item 5: each of these was a 500 or a silent 200 before."""
    user = [{"role": "user", "content": "hi"}]
    deep = b'{"model": "emafusion", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    assert _error(_post(base_url, deep), 400)["code"] == "invalid_json"
    assert _error(_post(base_url, '{"model": "emafusion", "messages": [{"role": "user", "content": "\\ud800"}]}'),
                  400)["param"] == "messages[0].content"
    assert _error(_post(base_url, '{"model": "emafusion\\ud800", "messages": [{"role": "user", "content": "hi"}]}'),
                  400)["param"] == "model"
    assert _error(_post(base_url, {"model": "emafusion", "messages": [{"role": ["user"], "content": "hi"}]}),
                  400)["param"] == "messages[0].role"
    for field, value in (("tools", [{"type": "function", "function": {"name": "f"}}]), ("tool_choice", "auto"),
                         ("response_format", {"type": "json_object"})):
        error = _error(_post(base_url, {"model": "emafusion", "messages": user, field: value}), 400)
        assert error["param"] == field and error["code"] == "unsupported_parameter" and field in error["message"]
    for model in ("emafusion-budget-0.01\n", "emafusion-budget-٠٫٠١", "emafusion-budget-٠.٠١", "emafusion-budget-0.01 ",
                  "emafusion-budget-1e-3", "emafusion-budget-inf"):
        assert _error(_post(base_url, {"model": model, "messages": user}), 404)["param"] == "model", repr(model)
    assert proxy.requests == 0
    _healthy(base_url)


def test_a_prompt_beyond_the_context_window_is_400(base_url, proxy):
    too_long = " ".join(str(i) for i in range(3000))  # ~6,000 tokens for SmolLM2's 2,048-token context
    error = _error(_post(base_url, {"model": "emafusion", "messages": [{"role": "user", "content": too_long}]}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    _healthy(base_url)
