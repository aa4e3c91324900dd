"""EMAFusion in the replay harness: the vectorised cascade equals the per-query Cascade, decisions never
depend on held-out scores, and the six variants run end to end on a suite that brings its own labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.cascade import Cascade
from emafusion_core.data import Suite
from emafusion_core.evaluation import Harness, ReplayExecutor, queries_of
from emafusion_core.evaluation.cascade_replay import PanelInputs, cascade_decision
from emafusion_core.evaluation.emafusion import EMAFusionPolicy, emafusion_policies
from emafusion_core.features import HashingEncoder
from emafusion_core.judges import Panel, PeerAgreementJudge, TableJudge
from emafusion_core.judges.extract import agreement
from emafusion_core.routing import Route

MODELS = ["m0", "m1", "m2", "m3"]
COSTS = [0.001, 0.002, 0.004, 0.01]


def synthetic_suite(n=240, seed=0, label_columns=True) -> Suite:
    """Math queries (m1 good at them) and writing queries (m2 good); m3 good at both; m0 at neither."""
    rng = np.random.default_rng(seed)
    q, o = [], []
    for i in range(n):
        math = i % 2 == 0
        text = (f"compute {i} plus {i % 7} times {i % 5}" if math else f"write a short story about item {i} and the sea")
        row = dict(query_id=f"q{i}", benchmark="mine", prompt=text, answer_format="multiple_choice")
        if label_columns:
            row.update(task_type="math" if math else "writing", complexity="medium",
                       domain="stem" if math else "creative", io_format="multiple_choice")
        q.append(row)
        right = {"m0": rng.random() < 0.3, "m1": (rng.random() < 0.9) if math else (rng.random() < 0.2),
                 "m2": (rng.random() < 0.2) if math else (rng.random() < 0.9), "m3": rng.random() < 0.95}
        for m, c in zip(MODELS, COSTS):
            o.append(dict(query_id=f"q{i}", model=m, score=float(right[m]), cost_usd=c,
                          response="A" if right[m] else rng.choice(["B", "C"])))
    models = pd.DataFrame({"model": MODELS, "family": ["f0", "f1", "f2", "f3"]})
    return Suite.from_tables("synthetic", pd.DataFrame(q), pd.DataFrame(o), models)


def test_vectorised_cascade_matches_per_query_cascade():
    suite = synthetic_suite(60)
    ex = ReplayExecutor(suite)
    queries = queries_of(suite, suite.query_ids)
    rng = np.random.default_rng(3)
    n, m = len(queries), len(MODELS)
    verifier = rng.uniform(0, 1, (n, m))
    has = np.ones((n, m), bool)
    costs = np.array([[ex.run(q, mm).cost_usd for mm in MODELS] for q in queries])
    peers = [1, 2]
    agree = {p: np.array([[agreement("multiple_choice", ex.run(q, a).response, ex.run(q, MODELS[p]).response)
                           if j != p else np.nan for j, a in enumerate(MODELS)] for q in queries]) for p in peers}
    cands = np.array([(sorted(rng.choice(m, size=rng.integers(1, 4), replace=False).tolist()) + [-1] * 3)[:3]
                      for _ in range(n)])
    tau = 0.55
    fast = cascade_decision(cands, PanelInputs(verifier, agree, has, costs), ["verifier", *peers], tau)
    table = TableJudge("verifier", {(q.query_id, mm): verifier[i, j] for i, q in enumerate(queries)
                                    for j, mm in enumerate(MODELS)}, calls_per_verdict=1)
    panel = Panel([table] + [PeerAgreementJudge(ex, MODELS[p]) for p in peers])
    for i, q in enumerate(queries):
        route = Route(tuple(MODELS[j] for j in cands[i] if j >= 0), "test")
        slow = Cascade(ex, panel, tau_j=tau).run(q, route)
        assert MODELS[fast.final[i]] == slow.answer.model, i
        assert fast.judge_cost[i] == pytest.approx(slow.judge_cost_usd), i
        assert (costs[i] * fast.ran[i]).sum() == pytest.approx(slow.model_cost_usd), i
        assert fast.judge_calls[i] == slow.judge_calls, i


@pytest.fixture(scope="module")
def harness_result():
    suite = synthetic_suite()
    families = dict(zip(suite.models["model"], suite.models["family"]))
    return Harness(suite, HashingEncoder(256), seeds=[0], policies=lambda s, sc: emafusion_policies(families),
                   n_budgets=6).run()


def test_six_variants_run_and_routing_beats_the_cheap_models(harness_result):
    pts = harness_result.points
    assert set(pts["policy"]) == {f"emafusion:{r}{c}" for r in ("taxonomy", "learned", "hybrid")
                                  for c in ("", "+cascade")}
    best = pts.groupby("policy")["accuracy"].max()
    # a router that learned the two kinds of query beats m1 and m2 (each right on half the kinds)
    assert (best > 0.7).all(), best
    share = pts.groupby("policy")["taxonomy_share"].agg(["min", "max"])
    assert (share.loc[["emafusion:taxonomy", "emafusion:taxonomy+cascade"]] == 1.0).all().all()
    assert (share.loc[["emafusion:learned", "emafusion:learned+cascade"]] == 0.0).all().all()
    assert share.loc["emafusion:hybrid", "max"] > 0  # the hybrid reports which path each query took


def test_decisions_do_not_depend_on_held_out_scores():
    a, b = synthetic_suite(seed=0), synthetic_suite(seed=0)
    # permute the scores of every query: fit labels change too, so compare a policy fitted on the SAME fit
    # data and evaluated on test views whose score column differs
    from emafusion_core.evaluation.context import FitData
    h = Harness(a, HashingEncoder(256), seeds=[0])
    views = h.views(0)
    fit = FitData(views["fit"], h.scorer.scores(views["fit"].query_ids), h.scorer.costs(views["fit"].query_ids))
    policy = EMAFusionPolicy("hybrid", True, {m: m for m in MODELS})
    policy.fit(fit, views["calibrate"])
    knob = policy.knobs(policy.hypers()[0])[5]
    before = policy.decide(views["test"], policy.hypers()[-1], knob)
    shuffled = b.outcomes.copy()
    shuffled["score"] = np.random.default_rng(1).permutation(shuffled["score"].to_numpy())
    h2 = Harness(Suite.from_tables("synthetic", b.queries, shuffled, b.models), HashingEncoder(256), seeds=[0])
    after = policy.decide(h2.views(0)["test"], policy.hypers()[-1], knob)
    np.testing.assert_array_equal(before.final, after.final)
    np.testing.assert_array_equal(before.ran, after.ran)


def test_suite_without_labels_or_rules_gets_a_clear_error():
    suite = synthetic_suite(label_columns=False)
    with pytest.raises(ValueError, match="no fit query has taxonomy labels"):
        Harness(suite, HashingEncoder(64), seeds=[0],
                policies=lambda s, sc: [EMAFusionPolicy("taxonomy", False, {})]).run()


def test_budget_explorer_picks_on_calibrate_and_caches():
    from emafusion_core.evaluation.explorer import BudgetExplorer

    suite = synthetic_suite()
    ex = BudgetExplorer(suite, HashingEncoder(256), EMAFusionPolicy("hybrid", True, {m: m for m in MODELS}),
                        n_budgets=5)
    cheap = ex.at_budget(ex.budgets[0])
    dear = ex.at_budget(ex.budgets[-1])
    assert cheap.chosen_on == "calibrate" and dear.cost_usd >= cheap.cost_usd
    table = ex.sweep.table()
    chosen_cal_cost = table.loc[[ex.knobs.index(cheap.knob)], "cost_usd"].iloc[0]
    assert chosen_cal_cost <= ex.budgets[0] * (1 + 1e-9) or chosen_cal_cost == table["cost_usd"].min()
    hand = ex.at_knob(ex.knobs[-1])
    assert hand.chosen_on == "hand" and hand.budget_usd is None
    assert abs(hand.shares.sum() - 1.0) < 1e-9
    assert ex.at_knob(ex.knobs[-1]).seconds < 0.05  # cached: a slider move costs nothing


def test_replayed_hybrid_routes_exactly_like_the_deployable_hybrid_router():
    """One pipeline: the harness's vectorised hybrid decision equals HybridRouter.route_batch built from the
    same fitted parts (TaxonomyRouter + LearnedRouter) on the same test queries."""
    from emafusion_core.evaluation.context import FitData
    from emafusion_core.hybrid import HybridRouter

    suite = synthetic_suite()
    encoder = HashingEncoder(256)
    harness = Harness(suite, encoder, seeds=[0])
    views = harness.views(0)
    fit = FitData(views["fit"], harness.scorer.scores(views["fit"].query_ids), harness.scorer.costs(views["fit"].query_ids))
    policy = EMAFusionPolicy("hybrid", False, {m: m for m in MODELS}, encoder=encoder)
    policy.fit(fit, views["calibrate"])
    test = views["test"]
    for knob in policy.knobs(None)[::17]:
        tau_fam, tau_c, lam = knob
        cands, primary, path = policy.route(test, knob)
        taxonomy, learned = policy.parts.taxonomy, policy.parts.learned
        taxonomy.tau_c, taxonomy.tau_fam, learned.cost_weight = tau_c, tau_fam, lam
        routes = HybridRouter(taxonomy, learned).route_batch(test.queries)
        for i, route in enumerate(routes):
            assert route.candidates == tuple(MODELS[j] for j in cands[i] if j >= 0), (knob, i)
            assert route.primary == MODELS[primary[i]], (knob, i)
            assert (route.path == "taxonomy") == bool(path[i]), (knob, i)
