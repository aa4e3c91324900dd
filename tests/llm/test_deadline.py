"""Deadlines (issue 15, item 4): a per-call timeout and a per-request deadline; retries stop at the deadline; a
frozen provider costs a request its deadline, not 120 s x 5 attempts x 3 calls; the server answers 504 when
nothing paid for can be returned."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from emafusion_core.llm import Budget, DeadlineExceeded, LLMClient, Pricer, RetryPolicy
from emafusion_core.llm._litellm import litellm
from emafusion_core.execution import ErrorKind, Query
from emafusion_core.llm import LiteLLMExecutor

MOCK = "gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]


class Frozen:
    def __init__(self):
        self.calls = 0

    async def __call__(self, **kwargs):
        self.calls += 1
        await asyncio.sleep(3600)


class Failing:
    def __init__(self):
        self.calls = 0

    async def __call__(self, **kwargs):
        self.calls += 1
        return await litellm.acompletion(**{**kwargs, "mock_response": litellm.InternalServerError(
            message="down", llm_provider="openai", model=MOCK)})


def _client(transport, **kw) -> LLMClient:
    return LLMClient({}, pricer=Pricer({MOCK: (10.0, 30.0)}), transport=transport, progress=False, **kw)


def test_a_frozen_provider_costs_the_deadline_and_the_worst_case():
    transport = Frozen()
    budget = Budget(1.0)
    view = _client(transport, budget=budget).view(budget=None, deadline_s=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        view.complete(MOCK, HI, max_tokens=8)
    assert time.monotonic() - started < 5 and transport.calls == 1 and info.value.sent
    assert budget.spent_usd > 0 and budget.spent_usd == pytest.approx(info.value.cost_usd)  # may have been billed
    answer = LiteLLMExecutor(view, params={"max_tokens": 8}).run(Query("q", "hi"), MOCK)  # after the deadline
    assert answer.error_kind is ErrorKind.DEADLINE


def test_retries_stop_at_the_deadline():
    transport = Failing()
    client = _client(transport, retry=RetryPolicy(max_attempts=5, base_delay_s=2.0, max_delay_s=2.0))
    view = client.view(deadline_s=0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        view.complete(MOCK, HI, max_tokens=8)
    assert time.monotonic() - started < 2.5 and transport.calls < 5


def test_the_call_timeout_applies_without_a_deadline():
    transport = Frozen()
    client = _client(transport, timeout_s=0.3, retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    view = client.view()
    with pytest.raises(Exception):
        view.complete(MOCK, HI, max_tokens=8)
    assert transport.calls == 2  # each attempt cut at the per-call timeout, then retried


@pytest.fixture
def frozen_provider():
    """A TCP port that accepts connections (kernel backlog) and never answers: a provider under SIGSTOP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()


@pytest.mark.live
def test_the_server_answers_504_at_the_deadline_when_the_provider_is_frozen(frozen_provider, tmp_path):
    import diskcache
    import httpx

    from emafusion_core.server import create_app
    from emafusion_core.system import EMAFusionSystem, make_client
    from test_server import _config, _error, _healthy, serving

    config = _config(frozen_provider, tmp_path / "cache")
    cache = diskcache.Cache(config.cache_dir)
    system = EMAFusionSystem.build(config, client=make_client(config, cache))
    try:
        with serving(create_app(system, None)) as url:
            started = time.monotonic()
            response = httpx.post(f"{url}/chat/completions", timeout=60,
                                  headers={"X-EMAFusion-Deadline-S": "1.5"},
                                  json={"model": "emafusion", "messages": [{"role": "user", "content": "hi"}]})
            elapsed = time.monotonic() - started
            error = _error(response, 504)
            assert error["code"] == "deadline_exceeded" and error["type"] == "timeout"
            assert elapsed < 30  # bounded by the deadline (plus routing), not 120 s x 5 attempts x calls
            bad = httpx.post(f"{url}/chat/completions", timeout=10, headers={"X-EMAFusion-Deadline-S": "1e3"},
                             json={"model": "emafusion", "messages": [{"role": "user", "content": "hi"}]})
            assert _error(bad, 400)["param"] == "x-emafusion-deadline-s"
            _healthy(url)
    finally:
        cache.close()
