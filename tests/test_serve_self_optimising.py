"""`serve` with the self-optimising loop (online_store.py) against the stub provider (tests/stub_provider.py): the
read-only endpoint counts every request and its verdicts; the learned state lives in the ledger's store and a new
system over it routes exactly as the one that learned; two servers on one store never lose an update; the loop
off changes nothing; a corrupt stored state stops the start with one line; an update that fails leaves no trace
and fails no request; exploration is charged and skipped when a cap refuses it; an unparseable LLM judge folds
nothing. In-process Server objects (fast); the CLI only where it is the thing tested."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import diskcache
import numpy as np
import pytest
import yaml

from emafusion_core.config import ConfigError, parse_config
from emafusion_core.execution import Query
from emafusion_core.features import HashingEncoder
from emafusion_core.ledgers import open_ledger
from emafusion_core.online_store import FORMAT, LearnedStateError, state_key
from emafusion_core.persist import learned_arrays, load_method, save_method
from emafusion_core.server import ChatRequest, Server, create_app
from emafusion_core.system import EMAFusionSystem, make_client, operating_point
from serve_support import run_cli, stub_provider

ENCODER = HashingEncoder(256)
PROBES = ["What is 6 times 7?", "Write a Python function that reverses a list.", "Which gas do plants absorb?",
          "Translate 'good morning' into French.", "Is 91 a prime number?", "Name the largest planet."]


def _doc(api_base: str, tmp: Path, name: str, **more) -> dict:
    """The stub pool of serve_support.stub_config, with its own ledger (and learned state) per test."""
    doc = {
        "models": [
            {"name": "small", "litellm_model": "openai/stub", "api_base": api_base, "stands_for":
             "mistralai/mistral-7b-chat", "family": "local", "price": {"input": 20, "output": 20}, "max_tokens": 16},
            {"name": "large", "litellm_model": "openai/stub", "api_base": api_base, "stands_for":
             "gpt-4-1106-preview", "family": "local", "price": {"input": 100, "output": 300}, "max_tokens": 16},
        ],
        "fit": {"suite": "routerbench", "seed": 0},
        "router": {"kind": "hybrid", "tau_c": 0.5, "tau_fam": 0.3},
        "cascade": {"enabled": True, "tau_j": 0.7, "judges": ["verifier"], "rule": "mean"},
        "budget_usd": 1.0, "cache_dir": str(tmp / f"cache-{name}"), "mode": "live", "timeout_s": 5.0,
        "ledger": {"backend": "disk", "path": str(tmp / f"ledger-{name}")},
        "self_optimising": {"enabled": True, "batch_size": 2, "explore_share": 0.5},
    }
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-loop")
    with stub_provider() as stub:
        config = parse_config(_doc(stub.api_base, tmp, "fit"))
        folder = save_method(_fit(config), tmp / "fitted")  # fitted once; each system loads it
        yield {"stub": stub, "tmp": tmp, "fitted": folder}


def _fit(config):
    """system.fit_method on a quarter of routerbench's queries, without the state verifier (no point here uses
    it): seconds, not a minute."""
    from emafusion_core.data import load_builtin, make_splits, split_ids, training_set
    from emafusion_core.method import EMAFusion
    from emafusion_core.system import pool_suite

    full = load_builtin("routerbench")
    suite = pool_suite(full.subset(sorted(full.query_ids)[::4]), config)
    train = training_set(suite, list(split_ids(make_splits(suite.queries, suite.name, 0), "fit")), seed=0)
    train.view.embeddings = np.asarray(ENCODER.encode(train.view.texts))
    return EMAFusion(k=config.router.k, encoder=ENCODER, require_taxonomy=False, state_verifier=False).fit(train)


def _system(world, name: str, **more) -> EMAFusionSystem:
    config = parse_config(_doc(world["stub"].api_base, world["tmp"], name, **more))
    client = make_client(config, diskcache.Cache(config.cache_dir), open_ledger(config))
    return EMAFusionSystem(config, load_method(world["fitted"], ENCODER), operating_point(config), client)


def _ask(server: Server, text: str, model: str = "emafusion"):
    from emafusion_core.server.openai import budget_of

    return server.answer(ChatRequest(model, text, False, False, budget_of(model)))


def _texts(n: int, tag: str) -> list[str]:
    return [f"{tag} question {i}: what is {i} plus {41 - i}?" for i in range(n)]


def _stored(system: EMAFusionSystem) -> dict | None:
    ledger = system.client.budget.ledger
    return ledger.store.read(state_key(ledger.name, system.config.fit_signature()))


def _same_arrays(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---- config -----------------------------------------------------------------------------------------------------

def test_the_self_optimising_section_is_validated_like_the_rest(world):
    base = _doc("http://127.0.0.1:1/v1", world["tmp"], "cfg")
    assert parse_config({**base, "self_optimising": {}}).self_optimising.enabled is False
    spec = parse_config(base).self_optimising
    assert (spec.enabled, spec.batch_size, spec.explore_share, spec.weight, spec.cap) == (True, 2, 0.5, 1.0, 1.0)
    for bad, where in (({"batch_sise": 3}, "self_optimising.batch_sise: unknown key (allowed: batch_size, cap, "
                                           "enabled, explore_share, seed, weight)"),
                       ({"batch_size": 0}, "self_optimising.batch_size:"),
                       ({"explore_share": 1.5}, "self_optimising.explore_share:"),
                       ({"enabled": "yes"}, "self_optimising.enabled:"),
                       ({"cap": -1}, "self_optimising.cap:")):
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "self_optimising": bad})
        assert str(err.value).startswith(where) and "\n" not in str(err.value)


# ---- the loop on --------------------------------------------------------------------------------------------------

def test_after_n_requests_the_endpoint_reports_n_queries_and_their_verdicts(world):
    from fastapi.testclient import TestClient

    system = _system(world, "count")
    app = create_app(system)
    server = app.state.server
    with TestClient(app) as http:
        assert http.get("/v1/emafusion/self-optimising").json()["version"] == 0
        replies = [http.post("/v1/chat/completions", json={"model": "emafusion", "messages": [
            {"role": "user", "content": t}]}) for t in _texts(6, "count")]
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        extras = [r.json()["emafusion"]["self_optimising"] for r in replies]
        report = http.get("/v1/emafusion/self-optimising").json()
        for method in ("post", "put", "delete"):
            assert getattr(http, method)("/v1/emafusion/self-optimising").status_code == 405
    queued = sum(e["queued_verdicts"] for e in extras)
    assert report["enabled"] is True and report["version"] == 3  # batch_size 2: three updates
    u = report["updates"]
    assert (u["batches"], u["queries"]) == (3, 6)
    assert u["verdicts"] == queued > 0 and u["pseudo_observations"] > 0
    assert sum(report["verdicts_per_model"].values()) == u["verdicts"]
    assert u["explored"] == sum(len(e.get("explored", [])) for e in extras)
    assert report["largest_shifts"] and {"axis", "category", "model", "before", "after", "shift"} <= set(
        report["largest_shifts"][0])
    assert report["store"]["backend"] == "disk" and report["store"]["key"].startswith("emafusion:self-optimising:")
    assert report["this_worker"]["pending_requests"] == 0 and report["this_worker"]["failed_updates"] == 0
    assert [e["update"]["version"] for e in extras if "update" in e] == [1, 2, 3]
    stored = _stored(system)
    assert stored["format"] == FORMAT and stored["version"] == 3 and stored["log"]["queries"] == 6
    assert server.loop.version == 3


def test_a_stored_state_reloads_in_a_new_system_to_the_same_routing(world):
    learner = _system(world, "reload", self_optimising={"batch_size": 1})
    server = Server(learner)
    for text in _texts(8, "reload"):
        _ask(server, text)
    assert server.loop.version == 8
    fitted = load_method(world["fitted"], ENCODER)
    assert not _same_arrays(learned_arrays(fitted), learned_arrays(learner.method)), "nothing was learned"
    # a new system over the same store (a restarted server, another worker): loads version 8 at start
    again = _system(world, "reload", self_optimising={"batch_size": 1})
    restarted = Server(again)
    assert restarted.loop.version == 8
    assert _same_arrays(learned_arrays(learner.method), learned_arrays(again.method))
    assert restarted.self_optimising()["updates"] == server.self_optimising()["updates"]
    probes = PROBES + _texts(8, "reload")
    batch_a, routes_a = learner._routed(probes)
    batch_b, routes_b = again._routed(probes)
    assert [r.candidates for r in routes_a] == [r.candidates for r in routes_b]
    assert [r.primary for r in routes_a] == [r.primary for r in routes_b]
    for a, b in zip(learner.method.route(batch_a, learner.point), again.method.route(batch_b, again.point)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(learner.method._phi(batch_a), again.method._phi(batch_b))
    np.testing.assert_array_equal(learner.method._predicted(batch_a), again.method._predicted(batch_b))


def test_two_servers_on_one_store_never_lose_an_update(world):
    a = Server(_system(world, "shared", self_optimising={"batch_size": 1}))
    b = Server(_system(world, "shared", self_optimising={"batch_size": 1}))  # its own cache and store objects
    texts = _texts(16, "shared")
    jobs = [(a if i % 2 else b, t) for i, t in enumerate(texts)]
    with ThreadPoolExecutor(4) as pool:
        served = list(pool.map(lambda job: _ask(*job), jobs))
    extras = [s.extra["self_optimising"] for s in served]
    versions = sorted(e["update"]["version"] for e in extras)
    assert all(e["update"]["applied"] for e in extras)
    assert versions == list(range(1, 17))  # each update its own version: none lost, none applied twice
    for server in (a, b):
        report = server.self_optimising()
        assert report["version"] == 16
        assert report["updates"]["queries"] == 16 and report["updates"]["batches"] == 16
        assert report["updates"]["verdicts"] == sum(e["queued_verdicts"] for e in extras)
    assert _same_arrays(learned_arrays(a.system.method), learned_arrays(b.system.method))


def test_replicas_on_one_redis_share_the_learned_state(world, tmp_path):
    """The same one-writer-at-a-time rule on the Redis store replicas on several machines use: two servers,
    updates interleaved, every version once, and a new replica starts from the last writer's learned arrays."""
    from serve_support import redis_server

    with redis_server(tmp_path) as url:
        ledger = {"backend": "redis", "url": url, "name": "loop"}
        a, b = (Server(_system(world, f"redis-{i}", ledger=ledger, self_optimising={"batch_size": 1}))
                for i in (0, 1))
        served = [_ask(a if i % 2 else b, t) for i, t in enumerate(_texts(6, "redis"))]
        assert sorted(s.extra["self_optimising"]["update"]["version"] for s in served) == list(range(1, 7))
        assert a.self_optimising()["version"] == b.self_optimising()["version"] == 6
        fresh = Server(_system(world, "redis-2", ledger=ledger, self_optimising={"batch_size": 1}))
        assert fresh.self_optimising()["version"] == 6  # a new replica starts from what the others learned
        assert _same_arrays(learned_arrays(fresh.system.method), learned_arrays(a.system.method))  # a wrote last


def test_a_writer_that_lost_the_race_redoes_its_update_on_the_newest_version(world):
    """Between B's load of the newest version and its write, A writes: B's compare-and-set fails, B loads A's
    version and folds again on it. The result is both updates, in order, as one process would have made them."""
    a = Server(_system(world, "race", self_optimising={"batch_size": 1, "explore_share": 1.0}))
    b = Server(_system(world, "race", self_optimising={"batch_size": 1, "explore_share": 1.0}))
    a_obs = a.system.ask("race question: what is 7 plus 35?", loop=a.loop).observed
    b_obs = b.system.ask("race question: what is 8 plus 34?", loop=b.loop).observed
    assert len(a_obs.models) and len(b_obs.models)
    learn = b.loop.optimiser.learn
    raced = []

    def learn_while_a_writes(observed, values=None):
        if not raced:
            raced.append(a.loop.record(a_obs)["update"])  # A wins the race
        return learn(observed, values)

    b.loop.optimiser.learn = learn_while_a_writes
    update = b.loop.record(b_obs)["update"]
    assert raced[0] == {"applied": True, "version": 1, "verdicts": len(a_obs.models)}
    assert update == {"applied": True, "version": 2, "verdicts": len(b_obs.models)} and b.loop.retries == 1
    report = a.self_optimising()
    assert report["version"] == 2 and report["updates"]["queries"] == 2
    assert report["updates"]["verdicts"] == len(a_obs.models) + len(b_obs.models)
    # the same two updates in one process, in the same order
    alone = _system(world, "race-alone", self_optimising={"batch_size": 1, "explore_share": 1.0})
    one = Server(alone)
    one.loop.record(a_obs), one.loop.record(b_obs)
    assert _same_arrays(learned_arrays(alone.method), learned_arrays(b.system.method))
    assert _same_arrays(learned_arrays(a.system.method), learned_arrays(b.system.method))


def test_the_loop_off_changes_nothing(world):
    system = _system(world, "off", self_optimising={"enabled": False})
    before = learned_arrays(system.method)
    server = Server(system)
    assert server.loop is None
    for text in _texts(4, "off"):
        assert "self_optimising" not in _ask(server, text).extra
    assert server.self_optimising() == {"enabled": False, "version": None}
    assert _same_arrays(before, learned_arrays(system.method))
    assert _stored(system) is None
    from fastapi.testclient import TestClient

    with TestClient(create_app(system)) as http:
        reply = http.get("/v1/emafusion/self-optimising")
        assert reply.status_code == 200 and reply.json() == {"enabled": False, "version": None}
        assert http.post("/v1/emafusion/self-optimising").status_code == 405


# ---- failures -----------------------------------------------------------------------------------------------------

def test_a_corrupt_stored_state_stops_the_start_with_one_line(world):
    system = _system(world, "corrupt")
    ledger = system.client.budget.ledger
    key = state_key(ledger.name, system.config.fit_signature())
    config_path = world["tmp"] / "corrupt.yaml"
    config_path.write_text(yaml.safe_dump(_doc(world["stub"].api_base, world["tmp"], "corrupt")))
    good = {"format": FORMAT, "version": 1, "fit": system.config.fit_signature(), "log": {}, "arrays": {}}
    for bad, says in (("not json {", "not valid JSON"),
                      (json.dumps({"format": "something-else", "version": 1}), "format 'something-else'"),
                      (json.dumps({**good, "version": "x"}), "version"),
                      (json.dumps({**good, "arrays": {"suit.task_type.sum": {"dtype": "<f8", "shape": [2],
                                                                           "data": "!!"}}}), "malformed"),
                      (json.dumps(good), "learned state: arrays")):
        ledger.store.cache.set(key, bad)
        with pytest.raises(LearnedStateError, match=says) as err:
            Server(system)
        assert "\n" not in str(err.value)
    ledger.store.cache.set(key, "not json {")
    result = run_cli("self-optimising", "show", "--config", str(config_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "invalid self-optimising state" in result.stderr and "self-optimising reset" in result.stderr
    reset = run_cli("self-optimising", "reset", "--config", str(config_path))
    assert reset.returncode == 0, reset.stderr
    server = Server(_system(world, "corrupt"))  # after the reset: starts from the fitted state
    assert server.loop.version == 1 and server.self_optimising()["updates"]["queries"] == 0
    np.testing.assert_equal(learned_arrays(server.system.method), learned_arrays(load_method(world["fitted"],
                                                                                             ENCODER)))


def test_a_method_without_a_taxonomy_router_cannot_learn_and_says_so_at_start(world):
    system = _system(world, "no-taxonomy")
    system.method.taxonomy_router_ = None  # fitted on a suite without taxonomy labels
    with pytest.raises(ConfigError, match="^self_optimising.enabled: .*without taxonomy labels"):
        Server(system)


def test_an_update_that_fails_fails_no_request_and_leaves_no_half_written_state(world, monkeypatch):
    system = _system(world, "fail", self_optimising={"batch_size": 1, "explore_share": 1.0})
    server = Server(system)
    _ask(server, "fail question: what is 2 plus 40?")
    assert server.loop.version == 1
    before, stored = learned_arrays(system.method), _stored(system)
    table = system.method.taxonomy_router_.suitability

    def broken(*args, **kwargs):  # the head update has run by now: the state is half changed when this raises
        raise RuntimeError("disk full")

    monkeypatch.setattr(table, "update", broken)
    served = _ask(server, "fail question: what is 3 plus 39?")
    assert served.text and served.extra["self_optimising"]["update"]["applied"] is False
    assert "disk full" in served.extra["self_optimising"]["update"]["error"]
    assert _same_arrays(before, learned_arrays(system.method)) and _stored(system) == stored
    monkeypatch.undo()

    store = system.client.budget.ledger.store
    budget_update = store.update

    def store_down(key, fn):  # writing the learned state fails (the ledger's updates still go through)
        if key.startswith("emafusion:self-optimising:"):
            raise ConnectionError("store unreachable")
        return budget_update(key, fn)

    monkeypatch.setattr(store, "update", store_down)
    served = _ask(server, "fail question: what is 4 plus 38?")
    assert served.text and served.extra["self_optimising"]["update"]["applied"] is False
    assert _same_arrays(before, learned_arrays(system.method)) and _stored(system) == stored
    report = server.self_optimising()
    assert report["version"] == 1 and report["this_worker"]["failed_updates"] == 2


def test_a_state_corrupted_while_serving_is_skipped_and_never_written_over(world):
    system = _system(world, "later", self_optimising={"batch_size": 1, "explore_share": 1.0})
    server = Server(system)
    _ask(server, "later question: what is 9 plus 33?")
    before = learned_arrays(system.method)
    ledger = system.client.budget.ledger
    key = state_key(ledger.name, system.config.fit_signature())
    ledger.store.cache.set(key, json.dumps({"format": FORMAT, "version": 7, "arrays": "garbage"}))
    served = _ask(server, "later question: what is 10 plus 32?")
    assert served.text == "42" and served.extra["self_optimising"]["version"] == 1
    assert served.extra["self_optimising"]["update"] == {"applied": False, "version": 1,
                                                         "error": "the stored newer version cannot be loaded"}
    assert json.loads(ledger.store.cache.get(key))["arrays"] == "garbage"  # left for the operator
    assert _same_arrays(before, learned_arrays(system.method))


def test_exploration_is_charged_and_skipped_when_a_cap_refuses_it(world):
    # the router alone, cheapest model first (a large cost weight): the loop's panel judges the returned answer,
    # and exploration buys the dear model
    system = _system(world, "explore", router={"kind": "learned", "cost_weight": 10.0}, cascade={"enabled": False},
                     self_optimising={"batch_size": 1, "explore_share": 1.0})
    server = Server(system)
    stub = world["stub"]
    calls = stub.stats()["requests"]
    served = _ask(server, "explore question: what is 5 plus 37?")
    explored = served.extra["self_optimising"]["explored"]
    assert explored and explored[0]["answered"] is True
    assert served.extra["cost_usd"]["judge"] > 0  # what exploration bought is charged as judge cost
    assert served.extra["models_run"] == ["small"] and explored == [{"model": "large", "answered": True}]
    assert stub.stats()["requests"] - calls == 2
    assert served.extra["spent_usd"] == pytest.approx(served.extra["cost_usd"]["total"])
    # a request cap that pays for the cheap answer only: exploring the dear model is refused and skipped
    text = "explore question: what is 6 plus 36?"
    small = system.executor.executors["small"].request(Query("request-0", text), "small")
    r_in, r_out = system.client.pricer.rates("small")
    worst = system.client._input_bound(small) * r_in + system.client._output_bound(small) * r_out
    cap = worst * 1.05
    served = _ask(server, text, f"emafusion-budget-{cap:.12f}")
    assert served.text == "42"
    assert served.extra["self_optimising"]["explored"] == [{"model": "large", "answered": False}]
    assert served.extra["spent_usd"] <= cap
    report = server.self_optimising()
    assert report["updates"]["explore_skipped"] == 1 and report["updates"]["explored"] == 2
    t = system.client.budget.totals()
    assert t.spent <= system.config.budget_usd and t.overshoot == 0.0


def test_an_llm_judge_reply_that_does_not_parse_is_an_abstention_that_folds_nothing(world):
    # the stub answers "42" to the judge's prompt too: no [[rating]] in it
    system = _system(world, "abstain", cascade={"judges": ["llm:small"]}, router={"kind": "learned", "cost_weight": 10.0},
                     self_optimising={"batch_size": 1, "explore_share": 0.0})
    before = learned_arrays(system.method)
    server = Server(system)
    for text in _texts(3, "abstain"):
        served = _ask(server, text)
        assert served.extra["verdicts"] and all(v["confidence"] is None for v in served.extra["verdicts"])
        assert served.extra["self_optimising"]["queued_verdicts"] == 0
    u = server.self_optimising()["updates"]
    assert (u["queries"], u["verdicts"], u["pseudo_observations"]) == (3, 0, 0.0)
    assert _same_arrays(before, learned_arrays(system.method))
