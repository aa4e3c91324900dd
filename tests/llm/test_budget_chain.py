"""ChainedBudget: a request's cap chained to the server's budgets (reserve and settle across parents, the scope
of a refusal, idempotent settling, many threads at once)."""
from __future__ import annotations

import math
import threading

import pytest

from emafusion_core.llm import Budget, BudgetExceeded, ChainedBudget


def test_reserve_and_settle_reach_every_parent():
    server, run = Budget(1.0, scope="server"), Budget(None)
    request = ChainedBudget(0.5, [server, run])
    hold = request.reserve(0.2, model="m", key="k")
    assert [b.reserved_usd for b in (request, server, run)] == pytest.approx([0.2, 0.2, 0.2])
    request.settle(hold, 0.05)
    assert [b.spent_usd for b in (request, server, run)] == pytest.approx([0.05, 0.05, 0.05])
    assert [b.reserved_usd for b in (request, server, run)] == pytest.approx([0, 0, 0])
    # a second request on the same server sees what the first spent; its own cap starts from zero
    other = ChainedBudget(None, [server])
    assert other.spent_usd == 0 and other.remaining_usd is None
    with pytest.raises(BudgetExceeded):
        other.reserve(0.96)
    other.settle(other.reserve(0.95), 0.95)
    assert server.spent_usd == pytest.approx(1.0) and request.spent_usd == pytest.approx(0.05)


def test_a_refusal_names_the_scope_that_refused_and_holds_nothing():
    server, run = Budget(1.0, scope="server"), Budget(0.3, scope="run")
    request = ChainedBudget(0.5, [server, run])
    with pytest.raises(BudgetExceeded) as own:
        request.reserve(0.6, model="large", key="k1")
    assert own.value.scope == "request" and own.value.model == "large" and "request budget" in str(own.value)
    with pytest.raises(BudgetExceeded) as parent:  # fits the request and the server, not the run: all released
        request.reserve(0.4)
    assert parent.value.scope == "run"
    assert [b.reserved_usd for b in (request, server, run)] == pytest.approx([0, 0, 0])
    server.settle(server.reserve(0.8), 0.8)
    with pytest.raises(BudgetExceeded) as first:
        request.reserve(0.25)
    assert first.value.scope == "server"
    assert [b.reserved_usd for b in (request, server, run)] == pytest.approx([0, 0, 0])
    tenant = ChainedBudget(0.1, [server], scope="tenant")  # a chain of chains: the inner chain's scope is told
    with pytest.raises(BudgetExceeded) as nested:
        ChainedBudget(None, [tenant]).reserve(0.15)
    assert nested.value.scope == "tenant" and tenant.reserved_usd == 0 and server.reserved_usd == 0


def test_capped_when_any_link_has_a_cap():
    assert not ChainedBudget(None, [Budget(None)]).capped
    assert ChainedBudget(None, [Budget(1.0)]).capped and ChainedBudget(1.0, [Budget(None)]).capped
    assert ChainedBudget(None, [ChainedBudget(None, [Budget(0.0)])]).capped
    with pytest.raises(ValueError):
        Budget(math.nan)


def test_settle_is_idempotent_even_from_many_threads():
    server = Budget(1.0, scope="server")
    request = ChainedBudget(0.5, [server])
    hold = request.reserve(0.4)
    barrier = threading.Barrier(8)

    def settle():
        barrier.wait()
        request.settle(hold, 0.1)

    threads = [threading.Thread(target=settle) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    request.settle(hold, 0.1)
    assert request.spent_usd == pytest.approx(0.1) and server.spent_usd == pytest.approx(0.1)
    assert request.reserved_usd == pytest.approx(0) and server.reserved_usd == pytest.approx(0)


def test_caps_hold_for_many_requests_on_many_threads():
    """8 requests (cap 0.2 each) on a server capped at 1.0, each reserving 0.03 ten times on its own thread:
    a request can hold 6 (0.18), the server 33 (0.99), whatever the interleaving."""
    server = Budget(1.0, scope="server")
    requests = [ChainedBudget(0.2, [server]) for _ in range(8)]
    holds: list[list] = [[] for _ in requests]
    refused: list[list[str]] = [[] for _ in requests]
    barrier = threading.Barrier(len(requests))

    def work(i):
        barrier.wait()
        for _ in range(10):
            try:
                holds[i].append(requests[i].reserve(0.03))
            except BudgetExceeded as exc:
                refused[i].append(exc.scope)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(map(len, holds)) == 33 and all(len(h) <= 6 for h in holds)
    assert server.reserved_usd == pytest.approx(0.99) and server.reserved_usd <= server.cap_usd
    assert all(scope in ("request", "server") for r in refused for scope in r)
    assert sum(r.count("server") for r in refused) > 0  # 48 would fit the requests' caps: the server refused
    for request, h, r in zip(requests, holds, refused):
        assert request.reserved_usd == pytest.approx(0.03 * len(h)) and len(h) + len(r) == 10
        if len(h) < 6:  # never reached its own cap: every refusal was the server's
            assert set(r) == {"server"}

    def settle_all(i):
        for hold in holds[i]:
            requests[i].settle(hold, 0.01)
            requests[i].settle(hold, 0.01)

    threads = [threading.Thread(target=settle_all, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.spent_usd == pytest.approx(0.33) and server.reserved_usd == pytest.approx(0, abs=1e-12)
    assert sum(r.spent_usd for r in requests) == pytest.approx(0.33)
    assert all(r.reserved_usd == pytest.approx(0, abs=1e-12) for r in requests)
