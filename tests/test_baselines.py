"""Baselines behave as their definitions say, never read scores at decision time, and replay identically."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.data import Suite
from emafusion_core.evaluation import (AutoMix, Harness, KNNRouter, MLPRouter, Oracle, RandomRouter,
                                       RouteLLMRouter, Scorer, SingleModel, ThresholdCascade, ZeroRouter,
                                       default_policies, paired_comparison, seed_metrics, summarise)
from emafusion_core.features import HashingEncoder


@pytest.fixture(scope="module")
def bench(routerbench) -> Suite:
    """Every fourth routerbench query (all three benchmarks, all 11 models): real data, fast."""
    return routerbench.subset(sorted(routerbench.query_ids)[::4])


def _fitted(suite: Suite, policy, seed: int = 0, scorer=None):
    harness = Harness(suite, HashingEncoder(), seeds=[seed], scorer=scorer)
    views = harness.views(seed)
    fit = views["fit"]
    policy.fit(harness.fit_data(fit), views["calibrate"])
    return harness, views


def _learned(suite):
    return [ZeroRouter(), RandomRouter(), KNNRouter(ks=(5, 20)), MLPRouter(max_iter=50), ThresholdCascade(),
            ThresholdCascade(per_stage=False, name="threshold-cascade"), AutoMix(), RouteLLMRouter()]


def test_oracle_beats_every_single_model(bench):
    scorer = Scorer(bench)
    harness, views = _fitted(bench, Oracle(scorer), scorer=scorer)
    test = views["test"]
    oracle = scorer.score(test.query_ids, Oracle(scorer).decide(test, None, None))
    for j in range(len(bench.model_names)):
        single = scorer.score(test.query_ids, SingleModel(bench.model_names[j]).decide(test, None, None))
        assert oracle.accuracy.mean() >= single.accuracy.mean()
    best = scorer.scores(test.query_ids).max(axis=1)
    assert np.array_equal(oracle.accuracy, best)  # the ceiling: every query gets its best score


def test_permuted_scores_leave_every_choice_unchanged(bench):
    """Scores of calibrate and test rows permuted: policies fitted on the same fit split decide identically."""
    harness, views = _fitted(bench, ZeroRouter())
    fit_ids = set(views["fit"].query_ids)
    out = bench.outcomes.copy()
    rows = ~out["query_id"].isin(fit_ids)
    out.loc[rows, "score"] = np.random.default_rng(1).permutation(out.loc[rows, "score"].to_numpy())
    permuted = Suite.from_tables(bench.name, bench.queries, out, bench.models)
    assert not np.array_equal(permuted.scores.to_numpy(), bench.scores.to_numpy())
    for make in _learned(bench):
        decisions = []
        for suite in (bench, permuted):
            policy = [p for p in _learned(suite) if p.name == make.name][0]
            _, views = _fitted(suite, policy)
            decisions.append([(h, k, policy.decide(views["test"], h, k)) for h in policy.hypers()
                              for k in policy.knobs(h)])
        for (h1, k1, a), (h2, k2, b) in zip(*decisions):
            assert (h1, k1) == (h2, k2)
            assert np.array_equal(a.final, b.final), make.name
            assert np.array_equal(a.ran_mask(11), b.ran_mask(11)), make.name


def test_knn_with_every_neighbour_is_the_best_average_model(bench):
    knn = KNNRouter(ks=(10_000,))
    harness, views = _fitted(bench, knn)
    k = knn.hypers()[0]
    assert k == len(views["fit"])
    best = int(np.argmax(harness.scorer.scores(views["fit"].query_ids).mean(axis=0)))
    assert set(knn.decide(views["test"], k, 0.0).final) == {best}
    # A huge lambda makes cost dominate: the cheapest model everywhere.
    assert set(knn.decide(views["test"], k, 1e3).final) == {0}


def test_cascade_counts_judge_calls_and_automix_charges_verification(bench):
    cascade = ThresholdCascade(per_stage=False)
    harness, views = _fitted(bench, cascade)
    chain = cascade.hypers()[-1]
    never = cascade.decide(views["test"], chain, 1.01)  # nobody accepted: the whole chain runs
    assert (never.final == chain[-1]).all() and (never.judge_calls == len(chain) - 1).all()
    always = cascade.decide(views["test"], chain, 0.0)
    assert (always.final == chain[0]).all() and (always.judge_calls == 1).all()

    automix = AutoMix()
    harness, views = _fitted(bench, automix)
    small = automix.hypers()[0]
    outcome = harness.scorer.score(views["test"].query_ids, automix.decide(views["test"], small, 0.0))
    small_cost = harness.scorer.costs(views["test"].query_ids)[:, small]
    assert outcome.judge_cost == pytest.approx(small_cost)  # verification priced as one more small call
    free = AutoMix(verify_cost="free")
    _fitted(bench, free)
    assert harness.scorer.score(views["test"].query_ids, free.decide(views["test"], small, 0.0)).judge_cost.sum() == 0


def test_routellm_threshold_hits_the_target_share_on_calibrate(bench):
    router = RouteLLMRouter()
    harness, views = _fitted(bench, router)
    cal = views["calibrate"]
    for share in (0.0, 0.25, 0.5, 1.0):
        strong = np.mean(router.decide(cal, None, share).final == router.strong)
        assert strong == pytest.approx(share, abs=0.02)
    assert router.pair[1] == bench.model_names[int(np.argmax(
        harness.scorer.scores(views["fit"].query_ids).mean(axis=0)))]


def test_random_and_zero_router_span_their_ends(bench):
    rnd = RandomRouter()
    harness, views = _fitted(bench, rnd)
    test = views["test"]
    assert set(rnd.decide(test, None, 1.0).final) == {10}
    assert len(set(rnd.decide(test, None, 0.0).final)) == 11
    zero = ZeroRouter()
    _fitted(bench, zero)
    first, last = zero.knobs(None)[0], zero.knobs(None)[-1]
    assert set(zero.decide(test, None, first).final) == {bench.model_names.index(first[0])}
    assert set(zero.decide(test, None, last).final) == {bench.model_names.index(last[0])}


def test_harness_is_deterministic(bench):
    def run():
        harness = Harness(bench, HashingEncoder(), seeds=[0, 1],
                          policies=lambda s, sc: [p for p in default_policies(s, sc) if not isinstance(p, MLPRouter)]
                          + [MLPRouter(max_iter=50)])
        result = harness.run()
        return result.points, result.calibrate
    a, b = run(), run()
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    points = a[0]
    assert {"suite", "policy", "seed", "knob", "accuracy", "cost_usd", "model_cost", "judge_cost",
            "router_cost", "judge_calls", "budget_usd"} <= set(points.columns)
    assert points.filter(like="share:").sum(axis=1).round(9).eq(1).all()


def test_holdout_benchmark_is_out_of_fit_and_calibrate(bench):
    harness = Harness(bench, HashingEncoder(), seeds=[0], holdout="mbpp")
    views = harness.views(0)
    kinds = {part: {q.benchmark for q in v.queries} for part, v in views.items()}
    assert kinds == {"fit": {"arc-challenge", "winogrande"}, "calibrate": {"arc-challenge", "winogrande"},
                     "test": {"mbpp"}}
    with pytest.raises(ValueError):
        Harness(bench, None, holdout="nope").views(0)


def test_a_one_benchmark_suite_holds_out_taxonomy_domains(mmlupro_small):
    from emafusion_core.evaluation.harness import holdout_groups, holdout_plan

    by, groups = holdout_plan(mmlupro_small)
    assert by == "domain" and {"stem", "humanities"} <= set(groups)
    domain = holdout_groups(mmlupro_small, "domain")
    views = Harness(mmlupro_small, None, seeds=[0], holdout="humanities", holdout_by="domain").views(0)
    assert {domain[q] for q in views["test"].query_ids} == {"humanities"}
    assert "humanities" not in {domain[q] for part in ("fit", "calibrate") for q in views[part].query_ids}
    with pytest.raises(ValueError, match="holdout_by"):
        Harness(mmlupro_small, None, holdout="stem", holdout_by="subject")


def test_the_holdout_plan_prefers_benchmarks(bench):
    from emafusion_core.evaluation.harness import holdout_plan

    assert holdout_plan(bench) == ("benchmark", ["arc-challenge", "mbpp", "winogrande"])


@pytest.fixture(scope="module")
def mmlupro_small():
    from emafusion_core.data import load_builtin

    suite = load_builtin("mmlupro")
    return suite.subset(sorted(suite.query_ids)[::20])


def test_summary_and_paired_comparison(bench):
    policies = lambda s, sc: [SingleModel(m) for m in s.model_names] + [Oracle(sc), KNNRouter(ks=(10,))]  # noqa: E731
    result = Harness(bench, HashingEncoder(), seeds=[0, 1], policies=policies).run()
    summary = summarise(seed_metrics(result, n_boot=50)).set_index("policy")
    oracle = summary.loc["oracle (ceiling)"]
    assert oracle["reads_scores"] and oracle["oracle_gap"] == 0
    defined = summary[summary["aiq"].notna()]  # the dearest single model's AIQ is not defined (NaN, with a note)
    assert summary["aiq"].isna().sum() == 1 and "AIQ not defined" in summary.loc[f"single:{bench.model_names[-1]}", "note"]
    assert (defined["aiq"] <= oracle["aiq"] + 1e-12).all()
    assert {"aiq", "aiq_ci_low", "aiq_ci_high", "nauc", "nauc_ci_low", "nauc_ci_high"} <= set(summary.columns)
    assert (defined["aiq_ci_low"] <= defined["aiq"]).all() and (defined["aiq"] <= defined["aiq_ci_high"]).all()
    same = paired_comparison(result, "knn", "knn", n_boot=50)
    assert (same["accuracy_diff"] == 0).all() and (same["accuracy_p"] == 1).all()
    vs = paired_comparison(result, "oracle (ceiling)", "knn", n_boot=50)
    assert (vs["accuracy_diff"] > 0).all() and (vs["accuracy_low"] > 0).all()
