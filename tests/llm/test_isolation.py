"""Requests cannot leak into each other (issue 15, item 2): the in-flight de-duplication shares only what cannot
differ (successes, or failures on the same budget chain), a budget refusal is never shared, and a refusal that
only calls in flight cause is transient (429 rate_limit_error with Retry-After), not a spent cap."""
from __future__ import annotations

import asyncio

import pytest

from emafusion_core.llm import Budget, BudgetExceeded, LLMClient, Pricer, Request
from emafusion_core.llm._litellm import litellm

MOCK = "gpt-4o-mini"
HI = [{"role": "user", "content": "the same prompt"}]


class Slow:
    """A transport that answers after a pause, so that calls overlap."""

    def __init__(self, pause: float = 0.2):
        self.pause, self.calls = pause, 0

    async def __call__(self, **kwargs):
        self.calls += 1
        await asyncio.sleep(self.pause)
        return await litellm.acompletion(**{**kwargs, "mock_response": "an answer"})


def _client(transport, budget=None, concurrency=1) -> LLMClient:
    return LLMClient({}, pricer=Pricer({MOCK: (10.0, 30.0)}), budget=budget, transport=transport,
                     concurrency=concurrency, progress=False)


def test_a_budget_refusal_is_never_shared_with_an_uncapped_request():
    """The issue's case: the same prompt with a tiny cap and without one, at once. The capped call leads (it is
    queued behind another call on the model's only slot), the uncapped one joins it in flight; the refusal of
    the first must not become the second's outcome."""
    transport = Slow()
    parent = _client(transport)
    tiny, free, other = parent.view(budget=1e-9), parent.view(budget=None), parent.view(budget=None)
    params = {"max_tokens": 8}

    async def run():
        return await asyncio.gather(
            other.acall(Request(MOCK, [{"role": "user", "content": "occupies the slot"}], params)),
            tiny.acall(Request(MOCK, HI, params)), free.acall(Request(MOCK, HI, params)), return_exceptions=True)

    busy, refused, answered = parent._loop.run(run())
    assert isinstance(refused, BudgetExceeded) and refused.scope == "request"
    assert not isinstance(answered, Exception) and answered.text == "an answer", answered
    assert free.budget.spent_usd > 0 and tiny.budget.spent_usd == 0


def test_successes_are_still_shared_in_flight():
    transport = Slow()
    parent = _client(transport, concurrency=4)
    a, b = parent.view(budget=1.0), parent.view(budget=None)

    async def run():
        return await asyncio.gather(a.acall(Request(MOCK, HI, {"max_tokens": 8})),
                                    b.acall(Request(MOCK, HI, {"max_tokens": 8})))

    first, second = parent._loop.run(run())
    assert transport.calls == 1 and first.text == second.text and second.cached


def test_a_refusal_is_transient_only_while_calls_in_flight_hold_the_budget():
    budget = Budget(1.0, scope="server")
    hold = budget.reserve(0.6)
    with pytest.raises(BudgetExceeded) as busy:
        budget.reserve(0.5)
    assert busy.value.transient and "retry later" in str(busy.value)
    budget.settle(hold, 0.6)
    with pytest.raises(BudgetExceeded) as spent:
        budget.reserve(0.5)
    assert not spent.value.transient
