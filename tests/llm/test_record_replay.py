"""One pipeline, proved: a live run of the fitted EMAFusion against the real local SmolLM2 (two pool models, real
routerbench questions, small max_tokens) is recorded through the gateway's disk cache; the same fitted method
then replays it from that cache (replay mode: nothing is sent) and from the equivalent outcome table (the
ReplayExecutor the notebooks use), and all three agree on every answer, model run, verdict and cost.

The small model's max_tokens is tiny, so some of its replies are truncated: failed calls that were paid for,
escalated unjudged, never cached as successes, and replayed as the same failures."""
from __future__ import annotations

import diskcache
import numpy as np
import pandas as pd
import pytest

from emafusion_core.config import parse_config
from emafusion_core.data import queries_of
from emafusion_core.execution import Batch, ErrorKind, Query, ReplayExecutor
from emafusion_core.method import OperatingPoint
from emafusion_core.system import EMAFusionSystem, PoolExecutor, make_client

pytestmark = pytest.mark.live


def _config(api_base: str, cache_dir: str, mode: str = "live"):
    model = {"litellm_model": "openai/smollm2", "api_base": api_base, "family": "local"}
    return parse_config({
        "models": [{**model, "name": "small", "stands_for": "mistralai/mistral-7b-chat", "max_tokens": 3,
                    "price": {"input": 0.2, "output": 0.2}},
                   {**model, "name": "large", "stands_for": "gpt-4-1106-preview", "max_tokens": 24,
                    "price": {"input": 10, "output": 30}}],
        "fit": {"suite": "routerbench", "seed": 0}, "router": {"kind": "learned", "k": 2},
        "cascade": {"judges": ["verifier", "llm:large"], "tau_j": 0.6},
        "cache_dir": cache_dir, "mode": mode, "budget_usd": 1.0})


def _observed(state, decision) -> dict:
    """Everything a run decided and paid, as plain values."""
    return {"final": decision.final.tolist(), "ran": decision.ran.tolist(), "paid": state.paid.tolist(),
            "cost": np.round(state.cost, 12).tolist(), "judge_cost": np.round(decision.judge_cost, 12).tolist(),
            "judge_calls": decision.judge_calls.tolist(), "failed": state.failed.tolist(),
            "text": state.text.tolist(), "verdicts": sorted((i, j, n, c) for i, j, n, c, _ in state.verdicts)}


@pytest.fixture(scope="module")
def fitted(routerbench):
    """The method fitted once (on the pool's part of routerbench's fit split); live runs reuse it."""
    config = _config("http://127.0.0.1:9/v1", "unused")
    from emafusion_core.llm.ledger import Ledger, MemoryStore

    # an in-memory cache and ledger: nothing of this fit-only client is written beside "unused"
    system = EMAFusionSystem.build(config, client=make_client(config, {}, ledger=Ledger(MemoryStore())))
    return system.method


def test_live_run_replays_identically_from_the_cache_and_from_an_outcome_table(proxy, tmp_path, fitted, routerbench):
    questions = [q for q in queries_of(routerbench, routerbench.query_ids[:400:80])]
    batch = lambda: Batch([Query(q.query_id, q.question, answer_format=q.answer_format) for q in questions])  # noqa: E731
    point = OperatingPoint("learned", cost_weight=0.0, k=2, cascade=True, panel=("verifier", "llm:large"),
                           tau_j=(("*", 0.6),))
    cache_dir = str(tmp_path / "cache")

    def run(mode: str, executor=None):
        config = _config(proxy.api_base, cache_dir, mode)
        client = make_client(config, diskcache.Cache(cache_dir))
        system = EMAFusionSystem(config, fitted, point, client)
        decision, state = fitted.decide(batch(), executor or PoolExecutor(client, config), point, record=True,
                                        judges=system.judges)
        return _observed(state, decision), state, client

    sent_before = proxy.requests
    live, live_state, live_client = run("live")
    assert proxy.requests > sent_before and live_client.spent_usd > 0
    assert live_state.failed[:, 0].any()  # small's 3-token replies are truncated: failed calls, paid for
    assert all(e is ErrorKind.BAD_REPLY for e in live_state.error[live_state.failed])
    assert np.isfinite([c for *_, c in live["verdicts"] if c is not None]).all()

    sent = proxy.requests
    from_cache, _, cache_client = run("replay")
    assert proxy.requests == sent and cache_client.spent_usd == 0  # nothing sent, nothing paid
    assert from_cache == live

    # the equivalent outcome table: every answer the live run bought, as a suite's outcome rows
    rows = [dict(query_id=live_state.batch.queries[i].query_id, model=live_state.model_names[j],
                 response=live_state.text[i, j], cost_usd=live_state.cost[i, j],
                 error_kind=None if not live_state.failed[i, j] else "bad_reply")
            for i, j in zip(*np.nonzero(live_state.paid))]
    table = ReplayExecutor(pd.DataFrame(rows), live_state.model_names)
    from_table, table_state, _ = run("replay", executor=table)
    recorded_failures = table_state.error[table_state.failed]
    assert all(e is ErrorKind.FAILED for e in recorded_failures) and len(recorded_failures)
    assert from_table == live
