"""The budget ledger (llm/ledger.py): one cap for several processes (diskcache on one machine, a real
redis-server for replicas), totals that survive the process, leases that charge a dead holder's reservation,
periods, and `emafusion budget show|reset`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import diskcache
import pytest

from emafusion_core.cli import main
from emafusion_core.config import parse_config
from emafusion_core.ledgers import open_ledger
from emafusion_core.llm import Budget, BudgetExceeded
from emafusion_core.llm.ledger import DiskStore, Ledger, MemoryStore, RedisStore
from serve_support import ROOT, _env, redis_server, stub_config

WORKER = Path(__file__).resolve().with_name("ledger_worker.py")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["disk", "redis"])
def store_spec(request, tmp_path):
    """A store every process can open: a diskcache directory, or a real redis-server's URL."""
    if request.param == "disk":
        yield str(tmp_path / "ledger")
    else:
        with redis_server(tmp_path) as url:
            yield url


def _store(spec: str):
    if spec.startswith("redis://"):
        import redis

        return RedisStore(redis.Redis.from_url(spec))
    return DiskStore(diskcache.Cache(spec))


def test_a_budget_keeps_its_interface_over_every_store(store_spec):
    budget = Budget(1.0, scope="server", ledger=Ledger(_store(store_spec), name="t"))
    hold = budget.reserve(0.4)
    assert budget.reserved_usd == pytest.approx(0.4) and budget.remaining_usd == pytest.approx(0.6)
    assert budget.settle(hold, 0.5) == pytest.approx(0.1)  # over-report: charged the reservation, rest counted
    assert budget.settle(hold, 0.5) == 0.0  # idempotent
    assert (budget.spent_usd, budget.reserved_usd) == (pytest.approx(0.4), 0.0)
    assert budget.overshoot_usd == pytest.approx(0.1)


def test_processes_share_one_cap_and_never_exceed_it(store_spec):
    cap = 1.0
    procs = [subprocess.Popen([sys.executable, str(WORKER), store_spec, str(cap), "60"], stdout=subprocess.PIPE,
                              text=True, env=_env(), cwd=ROOT) for _ in range(3)]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    budget = Budget(cap, ledger=Ledger(_store(store_spec), name="t"))
    t = budget.totals()
    assert t.reserved == 0.0 and t.holds == 0
    assert t.spent <= cap + 1e-9
    # one cap, not one each: together they charged what the ledger holds, and were refused once it was used
    assert t.spent == pytest.approx(sum(r["charged"] for r in results))
    assert sum(r["refused"] for r in results) > 0 and t.spent > cap * 0.8


def test_a_reservation_in_one_process_holds_in_another_until_its_lease_ends(store_spec):
    out = subprocess.run([sys.executable, str(WORKER), "hold", store_spec, "0.8", "600"], capture_output=True,
                         text=True, env=_env(), cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "held"
    clock = Clock()
    import time

    clock.now = time.time()
    budget = Budget(1.0, scope="server", ledger=Ledger(_store(store_spec), name="t", lease_s=600, clock=clock))
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve(0.5)
    assert refused.value.transient  # held by a call in flight (elsewhere): retry later
    clock.now += 601  # the holder died: at its lease's end the reservation is charged in full
    t = budget.totals()
    assert (t.spent, t.reserved, t.expired) == (pytest.approx(0.8), 0.0, pytest.approx(0.8))
    with pytest.raises(BudgetExceeded) as refused:
        budget.reserve(0.5)
    assert not refused.value.transient  # now the cap is spent


def test_a_settlement_after_the_lease_is_charged_once():
    clock = Clock()
    budget = Budget(1.0, ledger=Ledger(MemoryStore(), lease_s=10, clock=clock))
    hold = budget.reserve(0.3)
    clock.now += 11
    assert budget.spent_usd == pytest.approx(0.3)
    budget.settle(hold, 0.1)  # too late: the worst case was charged already
    assert budget.spent_usd == pytest.approx(0.3) and budget.reserved_usd == 0.0


def test_a_new_period_starts_from_zero_and_old_holds_settle_where_they_were_taken(tmp_path):
    clock = Clock(1_800_000_000.0 - 1_800_000_000.0 % 86400 + 86399)  # one second before midnight UTC
    store = DiskStore(diskcache.Cache(str(tmp_path / "ledger")))
    budget = Budget(1.0, ledger=Ledger(store, period="day", clock=clock))
    budget.settle(budget.reserve(0.9), 0.9)
    late = budget.reserve(0.1)
    clock.now += 2  # a new UTC day
    assert budget.spent_usd == 0.0 and budget.remaining_usd == 1.0
    budget.settle(late, 0.1)  # charged to the day it was reserved in
    assert budget.spent_usd == 0.0
    clock.now -= 2
    assert budget.spent_usd == pytest.approx(1.0)


def test_the_config_names_the_ledger_and_its_period(tmp_path):
    doc = {"models": [{"name": "a", "litellm_model": "openai/x", "stands_for": "m"}], "budget_usd": 1.0,
           "cache_dir": str(tmp_path / "cache"), "budget_period": "month"}
    config = parse_config(doc)
    assert config.ledger.backend == "disk" and config.budget_period == "month"
    assert config.ledger.disk_path(config.cache_dir) == str(tmp_path / "cache-budget")
    ledger = open_ledger(config)
    assert ledger.backend == "disk" and ledger.period == "month" and ledger.lease_s == 900
    from emafusion_core.config import ConfigError

    for bad, key in (({"budget_period": "week"}, "budget_period"), ({"ledger": {"backend": "redis"}}, "ledger.url"),
                     ({"ledger": {"lease_s": 0}}, "ledger.lease_s"), ({"ledger": {"backend": "sql"}}, "ledger.backend")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config({**doc, **bad})


def test_budget_show_and_reset(tmp_path, capsys):
    config_path = stub_config(tmp_path / "c.yaml", "http://127.0.0.1:9/v1", budget_usd=1.0,
                              cache_dir=tmp_path / "cache")
    from emafusion_core.config import load_config

    budget = Budget(1.0, ledger=open_ledger(load_config(config_path)))
    budget.settle(budget.reserve(0.25), 0.25)
    budget.reserve(0.125)  # in flight
    assert main(["budget", "show", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "spent: $0.250000" in out and "reserved by calls in flight: $0.125000 (1 holds)" in out
    assert "remaining: $0.625000" in out and "disk ledger 'default'" in out
    assert main(["budget", "reset", "--config", str(config_path)]) == 0
    assert "spent $0.250000 -> $0" in capsys.readouterr().out
    assert budget.spent_usd == 0.0 and budget.reserved_usd == pytest.approx(0.125)


def test_budget_commands_refuse_an_unreachable_redis_in_one_line(tmp_path, capsys):
    config_path = stub_config(tmp_path / "c.yaml", "http://127.0.0.1:9/v1", budget_usd=1.0,
                              cache_dir=tmp_path / "cache", ledger={"backend": "redis", "url": "redis://127.0.0.1:9/0"})
    assert main(["budget", "show", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert "ledger.url: cannot reach Redis" in err and len(err.strip().splitlines()) == 1


def test_a_config_with_a_redis_ledger_shares_one_cap_between_replicas(tmp_path):
    with redis_server(tmp_path) as url:
        doc = {"models": [{"name": "a", "litellm_model": "openai/x", "stands_for": "m"}], "budget_usd": 1.0,
               "ledger": {"backend": "redis", "url": url, "name": "shared"}}
        one, two = (Budget(1.0, ledger=open_ledger(parse_config({**doc, "cache_dir": str(tmp_path / c)})))
                    for c in ("replica-1", "replica-2"))  # two machines: two caches, one ledger
        assert one.ledger.backend == "redis" and one.ledger.lease_s == 900
        hold = one.reserve(0.7)
        with pytest.raises(BudgetExceeded) as refused:
            two.reserve(0.5)
        assert refused.value.transient
        one.settle(hold, 0.6)
        assert two.spent_usd == pytest.approx(0.6) and two.remaining_usd == pytest.approx(0.4)


def test_a_missing_redis_server_fails_under_ci_and_skips_elsewhere(tmp_path, monkeypatch):
    import serve_support

    monkeypatch.setattr(serve_support, "redis_server_path", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server is missing"):
        with redis_server(tmp_path):
            pass
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        with redis_server(tmp_path):
            pass


def test_a_request_chain_settles_its_parents_even_when_a_parents_lease_ran_out():
    from emafusion_core.llm import ChainedBudget

    clock = Clock()
    server = Budget(1.0, scope="server", ledger=Ledger(MemoryStore(), lease_s=10, clock=clock))
    other = Budget(1.0, scope="run")
    request = ChainedBudget(None, [server, other])
    hold = request.reserve(0.3)
    clock.now += 11  # the server's lease ran out: charged the worst case there
    request.settle(hold, 0.1)
    assert server.spent_usd == pytest.approx(0.3) and other.spent_usd == pytest.approx(0.1)
    assert request.spent_usd == pytest.approx(0.1) and other.reserved_usd == 0.0


def test_a_new_client_of_the_same_config_starts_from_what_was_spent(tmp_path):
    """A restart: make_client opens the config's disk ledger, so the cap counts the earlier run's spending;
    client.spent_usd stays what this client itself charged."""
    from emafusion_core.system import make_client

    config = parse_config({"models": [{"name": "a", "litellm_model": "openai/x", "stands_for": "m",
                                       "price": {"input": 1, "output": 1}}],
                           "budget_usd": 1.0, "cache_dir": str(tmp_path / "cache")})
    first = make_client(config)
    first.budget.settle(first.budget.reserve(0.25), 0.25)
    again = make_client(config)
    assert again.budget.spent_usd == pytest.approx(0.25) and again.budget.remaining_usd == pytest.approx(0.75)
    assert again.spent_usd == 0.0 and again.budget.ledger.backend == "disk"
