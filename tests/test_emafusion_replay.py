"""EMAFusion in the replay harness: decisions never depend on held-out scores, the six variants run end to end
on a suite that brings its own labels, the hybrid switch routes familiar queries by taxonomy and the rest by
the learned router, and calibration on a TrainingSet gives the harness's operating points."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.data import Suite, make_splits, split_ids, training_set
from emafusion_core.evaluation import Harness
from emafusion_core.evaluation.emafusion import EMAFusionPolicy, emafusion_policies
from emafusion_core.features import HashingEncoder
from emafusion_core.method import EMAFusion, OperatingPoint

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
    h = Harness(a, HashingEncoder(256), seeds=[0])
    views = h.views(0)
    fit = h.fit_data(views["fit"])
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


def test_suite_without_labels_or_rules_reports_taxonomy_variants_unavailable_and_runs_the_rest():
    suite = synthetic_suite(label_columns=False)
    result = Harness(suite, HashingEncoder(64), seeds=[0],
                     policies=lambda s, sc: [EMAFusionPolicy("taxonomy", False, {}), EMAFusionPolicy("hybrid", True, {}),
                                             EMAFusionPolicy("learned", True, {})]).run()
    assert set(result.unavailable) == {"emafusion:taxonomy", "emafusion:hybrid+cascade"}
    assert "no fit query has taxonomy labels" in result.unavailable["emafusion:taxonomy"]
    assert [r.policy for r in result.runs] == ["emafusion:learned+cascade"]


def test_budget_explorer_picks_on_calibrate_and_caches():
    from emafusion_core.evaluation.explorer import BudgetExplorer

    suite = synthetic_suite()
    ex = BudgetExplorer(suite, HashingEncoder(256), EMAFusionPolicy("hybrid", True, {m: m for m in MODELS}),
                        n_budgets=5)
    cheap = ex.at_budget(ex.budgets[0])
    dear = ex.at_budget(ex.budgets[-1])
    assert cheap.chosen_on == "calibrate" and dear.cost_usd >= cheap.cost_usd
    table = ex.sweep.table()
    index = [k.values() for k in ex.knobs].index(cheap.knob)
    chosen_cal_cost = table.loc[index, "cost_usd"]
    assert chosen_cal_cost <= ex.budgets[0] * (1 + 1e-9) or chosen_cal_cost == table["cost_usd"].min()
    on_dial = [k for k in ex.knobs if k.dial() == ex.knobs[0].dial()]  # the grid also holds learned-alone points
    hand = ex.at_knob(on_dial[-1].values())  # the dial's values, as sliders give them
    assert hand.chosen_on == "hand" and hand.budget_usd is None and hand.knob == on_dial[-1].values()
    assert hand.setting == {"router": "hybrid", **dict(zip(on_dial[-1].dial(), on_dial[-1].values()))}
    with pytest.raises(ValueError, match="expected 4 values"):
        ex.at_knob((0.8,))
    assert abs(hand.shares.sum() - 1.0) < 1e-9
    calls = []
    decide = ex.policy.decide
    ex.policy.decide = lambda *a: calls.append(a) or decide(*a)
    again = ex.at_knob(on_dial[-1].values())
    assert calls == [] and again.accuracy == hand.accuracy  # a slider moved back costs no re-decision


@pytest.fixture(scope="module")
def fitted():
    suite = synthetic_suite()
    enc = HashingEncoder(256)
    splits = make_splits(suite.queries, suite.name, 0)
    sets = {}
    for part in ("fit", "calibrate", "test"):
        ids = list(split_ids(splits, part))
        sets[part] = training_set(suite, ids, split=part, embeddings=enc.encode(suite.queries.set_index("query_id")
                                                                       .loc[ids, "question"].tolist()), seed=0)
    return EMAFusion().fit(sets["fit"]), sets


def test_the_one_hybrid_switch_sends_familiar_queries_to_taxonomy_and_the_rest_to_learned(fitted):
    method, sets = fitted
    batch = sets["test"].view
    for tau_fam in (0.0, 0.6, 0.9, 1.01):
        point = OperatingPoint("hybrid", tau_c=0.5, tau_fam=tau_fam, cost_weight=0.05, k=2, cascade=False, panel=())
        cands, primary, taxonomy_path = method.route(batch, point)
        t_cands, t_primary, _ = method.route(batch, OperatingPoint("taxonomy", tau_c=0.5, k=2, cascade=False, panel=()))
        l_cands, l_primary, _ = method.route(batch, OperatingPoint("learned", cost_weight=0.05, k=2, cascade=False,
                                                                   panel=()))
        np.testing.assert_array_equal(cands[taxonomy_path], t_cands[taxonomy_path])
        np.testing.assert_array_equal(cands[~taxonomy_path], l_cands[~taxonomy_path])
        np.testing.assert_array_equal(primary, np.where(taxonomy_path, t_primary, l_primary))
        routes = method.explain(batch, point)
        assert [r.path == "learned" for r in routes] == (~taxonomy_path).tolist()
        assert [r.candidates for r in routes] == [tuple(MODELS[j] for j in row if j >= 0) for row in cands]
        if tau_fam > 1:
            assert not taxonomy_path.any()  # nothing is that familiar


def test_method_calibration_gives_the_harness_operating_points(fitted):
    """EMAFusion.calibrate on a TrainingSet and the harness's calibration of the same variant choose the same
    operating point for every budget (one implementation, two callers)."""
    method, sets = fitted
    points = method.calibrate(sets["calibrate"], "hybrid", True, n_budgets=6)
    suite = synthetic_suite()
    result = Harness(suite, HashingEncoder(256), seeds=[0], n_budgets=6,
                     policies=lambda s, sc: [EMAFusionPolicy("hybrid", True)]).run()
    from_harness = result.runs[0].info["operating_points"]
    assert [p.budget_usd for p in points] == pytest.approx([b for b, _ in from_harness])
    assert [p.values() for p in points] == [k.values() for _, k in from_harness]
    assert [p.panel for p in points] == [k.panel for _, k in from_harness]
    round_trip = [OperatingPoint.from_dict(p.to_dict()) for p in points]
    assert round_trip == points


def test_the_hybrid_nests_the_learned_router_so_calibrate_never_chooses_worse(fitted):
    """Every learned-router point is a hybrid knob too (nothing familiar): at every budget the learned router can
    meet, the hybrid's calibrate-chosen point is at least as accurate on calibrate as the learned router's, with or
    without the cascade (its grid nests the learned router's cascade and router-alone points as well)."""
    from emafusion_core.results import grade

    method, sets = fitted
    cal = sets["calibrate"]
    for cascade in (False, True):
        grid = method.grid("hybrid", cascade, ("verifier",), cal.view, no_cascade=cascade)
        learned = method.grid("learned", cascade, ("verifier",), cal.view, no_cascade=cascade)
        assert set(learned) <= set(grid)
        budgets = np.geomspace(min(COSTS), max(COSTS) * 2, 6)
        chosen = {r: method.calibrate(cal, r, cascade, budgets=budgets, panels=[("verifier",)] if cascade else None)
                  for r in ("hybrid", "learned")}

        def measured(point):
            outcome = grade(method.decide(cal.view, cal.executor, point)[0], cal.scores, cal.costs, cal.failed)
            return float(outcome.accuracy.mean()), float(outcome.cost.mean())

        met = 0
        for h, l in zip(chosen["hybrid"], chosen["learned"]):
            (h_acc, h_cost), (l_acc, l_cost) = measured(h), measured(l)
            if l_cost <= l.budget_usd * (1 + 1e-9):
                met += 1
                assert h_acc >= l_acc - 1e-12 and h_cost <= h.budget_usd * (1 + 1e-9)
        assert met >= 3
