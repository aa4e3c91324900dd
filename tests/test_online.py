"""The self-optimising loop (online.py): its updates come from the judges' verdicts, never from a score column;
they are bounded; exploration is charged; a saved method keeps what was learned and reloads to the same routing."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core.execution import ReplayExecutor
from emafusion_core.features import HashingEncoder
from emafusion_core.method import EMAFusion, OperatingPoint
from emafusion_core.online import SelfOptimiser
from emafusion_core.persist import load_method, save_method
from suite_support import split_sets

POINT = OperatingPoint("hybrid", tau_c=0.5, tau_fam=0.3, cost_weight=0.05, panel=("verifier",), tau_j=(("*", 0.6),))


@pytest.fixture(scope="module")
def fitted(routerbench):
    suite = routerbench.subset(sorted(routerbench.query_ids)[::3])
    sets = split_sets(suite, HashingEncoder(128), ("fit", "calibrate", "test"))
    return EMAFusion(encoder=HashingEncoder(128)).fit(sets["fit"]), sets, suite


def _fresh(view):
    return type(view)(view.queries, view.embeddings)


def _table(method):
    t = method.taxonomy_router_.suitability
    return {a: (t._sum[a].copy(), t._mass[a].copy()) for a in t._sum}


def _loop(fitted, **kw):
    import copy

    method, sets, _ = fitted
    return SelfOptimiser(copy.deepcopy(method), POINT, **kw), sets


def test_updates_come_from_verdicts_and_change_the_table(fitted):
    loop, sets = _loop(fitted, explore_share=0.2)
    before = _table(loop.method)
    cal = sets["calibrate"]
    loop.observe(_fresh(cal.view), cal.executor)
    after = _table(loop.method)
    assert loop.log.verdicts > 0 and loop.log.pseudo_observations > 0
    assert any(not np.array_equal(before[a][1], after[a][1]) for a in before)
    test = sets["test"]
    moved = loop.method.learned_.predict_from_embeddings(test.view.embeddings)
    fitted_pred = fitted[0].learned_.predict_from_embeddings(test.view.embeddings)
    assert not np.allclose(moved, fitted_pred), "the learned router's heads should learn from the verdicts"


def test_head_updates_are_pulled_toward_the_fitted_heads(fitted):
    import copy

    method, sets, _ = fitted
    x = sets["test"].view.embeddings[:40]
    prior = method.learned_.predict_from_embeddings(x)
    shift = {}
    for shrinkage in (0.0, 100.0):
        learned = copy.deepcopy(method.learned_)
        learned.update_heads(x, np.zeros(40, int), np.ones(40), np.ones(40), steps=20, lr=0.5, shrinkage=shrinkage)
        shift[shrinkage] = np.abs(learned.predict_from_embeddings(x)[:, 0] - prior[:, 0]).mean()
    assert shift[100.0] < 0.2 * shift[0.0]


def test_updates_never_read_scores(fitted):
    """Permuting the score column of the outcomes the stream is answered from changes nothing the loop learns
    (the executor never carries scores; this catches any path that would)."""
    method, sets, suite = fitted
    cal = sets["calibrate"]
    outcomes = suite.outcomes.copy()
    rng = np.random.default_rng(0)
    outcomes["score"] = rng.permutation(outcomes["score"].to_numpy())
    permuted = ReplayExecutor(outcomes.drop(columns=["score"]), suite.model_names)
    tables = []
    for executor in (cal.executor, permuted):
        loop, _ = _loop(fitted, explore_share=0.2)
        loop.observe(_fresh(cal.view), executor)
        tables.append(_table(loop.method))
    for axis in tables[0]:
        np.testing.assert_array_equal(tables[0][axis][0], tables[1][axis][0])
        np.testing.assert_array_equal(tables[0][axis][1], tables[1][axis][1])


def test_a_judge_that_always_says_wrong_moves_the_table_only_as_far_as_the_cap(fitted):
    loop, sets = _loop(fitted, cap=0.5, explore_share=1.0)
    table = loop.method.taxonomy_router_.suitability
    fitted_mass = {a: table._mass[a].copy() for a in table._sum}
    cal = sets["calibrate"]
    always_wrong = lambda batch, rows, models, conf: np.zeros(len(rows))  # noqa: E731
    for _ in range(5):
        loop.observe(_fresh(cal.view), cal.executor, always_wrong)
    for axis, mass in fitted_mass.items():
        assert (table.pseudo(axis) <= 0.5 * (mass + table.prior_strength) + 1e-9).all()
        assert table.pseudo(axis).sum() > 0


def test_exploration_is_charged_to_the_judges(fitted):
    method, sets, _ = fitted
    cal = sets["calibrate"]
    base, _ = method.decide(_fresh(cal.view), cal.executor, POINT)
    loop, _ = _loop(fitted, explore_share=1.0)
    explored = loop.observe(_fresh(cal.view), cal.executor)
    assert loop.log.explored > 0
    assert explored.judge_cost.sum() > base.judge_cost.sum()
    assert explored.judge_calls.sum() > base.judge_calls.sum()


def test_a_saved_state_reloads_to_the_same_routing_and_keeps_learning_the_same(fitted, tmp_path):
    loop, sets = _loop(fitted, explore_share=0.2)
    cal, test = sets["calibrate"], sets["test"]
    loop.observe(_fresh(cal.view), cal.executor)
    folder = save_method(loop.method, tmp_path / "model")
    loaded = load_method(folder, HashingEncoder(128))
    for a, b in zip(loop.method.route(_fresh(test.view), POINT), loaded.route(_fresh(test.view), POINT)):
        np.testing.assert_array_equal(a, b)
    again = SelfOptimiser(loaded, POINT, explore_share=0.2)
    loop.observe(_fresh(test.view), test.executor)
    again.observe(_fresh(test.view), test.executor)
    for axis, (s, m) in _table(loop.method).items():
        np.testing.assert_allclose(_table(loaded)[axis][0], s)
        np.testing.assert_allclose(_table(loaded)[axis][1], m)


def test_a_router_alone_point_learns_from_its_panel_judging_the_returned_answers(fitted):
    """Calibrate may choose the router alone (no cascade): the loop's own panel then judges what was returned."""
    import copy

    method, sets, _ = fitted
    cal = sets["calibrate"]
    point = OperatingPoint("hybrid", tau_c=0.5, tau_fam=0.3, cost_weight=0.05, cascade=False, panel=())
    loop = SelfOptimiser(copy.deepcopy(method), point, explore_share=0.0, panel=("verifier",))
    loop.observe(_fresh(cal.view), cal.executor)
    assert loop.log.verdicts > 0


def test_the_claims_row_follows_the_ci_over_seeds():
    import pandas as pd

    from emafusion_core.evaluation.self_optimising import gain_table, self_optimising_claims

    def rows(gains):
        out = []
        for seed, g in enumerate(gains):
            for arm, v in (("frozen", 0.5), ("verdicts", 0.5 + g), ("ceiling (true scores)", 0.6),
                           ("all of fit labelled", 0.7)):
                out.append(dict(suite="s", stream="random", label_share=0.1, seed=seed, arm=arm, seen=100, aiq=v))
        return pd.DataFrame(out)

    verdicts = {}
    for name, gains in (("up", [0.01, 0.012, 0.011]), ("down", [-0.01, -0.012, -0.011]), ("flat", [0.01, -0.01, 0.0])):
        claim = self_optimising_claims(gain_table(rows(gains)), 0.1)
        assert len(claim) == 1 and claim["claim"].iloc[0].startswith("self-optimising")
        verdicts[name] = claim["verdict"].iloc[0]
    from emafusion_core.evaluation.claims import HOLDS, INCONCLUSIVE, NOT_HOLD

    assert verdicts == {"up": HOLDS, "down": NOT_HOLD, "flat": INCONCLUSIVE}


def test_shares_parameters_are_fractions():
    from emafusion_core import params

    assert params.shares("0.05, 0.1", "label_shares") == [0.05, 0.1]
    for bad in ([0], [1.5], ["x"], [True], []):
        with pytest.raises(params.ParameterError, match="label_shares"):
            params.shares(bad, "label_shares")


def test_the_figure_has_one_panel_per_stream_and_share():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from emafusion_core.plots import self_optimising_curves

    rows = pd.DataFrame([dict(suite="s", stream=stream, label_share=share, seed=seed, arm=arm, seen=seen, aiq=0.5)
                         for stream, share in (("random", 0.05), ("random", 0.1), ("blocks", 0.1))
                         for seed in (0, 1) for seen in (0, 100)
                         for arm in ("frozen", "verdicts", "ceiling (true scores)", "all of fit labelled")])
    fig = self_optimising_curves(rows, "s")
    assert len(fig.axes) == 3 and "drift" in fig.axes[2].get_title()


def test_stream_experiment_shares_the_start_between_streams_and_keeps_the_knobs(routerbench):
    """The random and the blocks stream of one (seed, share) start from the same fitted slice, points and frozen
    numbers (computed once); without recalibrate, every checkpoint evaluates the knobs calibrate chose first."""
    from emafusion_core.evaluation import Harness
    from emafusion_core.evaluation.self_optimising import StreamExperiment

    suite = routerbench.subset(sorted(routerbench.query_ids)[::4])
    experiment = StreamExperiment(Harness(suite, HashingEncoder(128), seeds=[0]), batch_size=50, n_checkpoints=1,
                                  n_budgets=3, max_stream=100, report_on="calibrate")
    random = experiment.run(0, 0.2)
    blocks = experiment.run(0, 0.2, drift=True)
    assert len(experiment._starts) == 1
    frozen = [f[f["arm"] == "frozen"][["aiq", "accuracy", "cost_usd"]].to_numpy() for f in (random, blocks)]
    np.testing.assert_array_equal(*frozen)
    assert sorted(random["seen"].unique()) == [0, 100]
    start = random[random["seen"] == 0].set_index("arm")
    assert start.loc["verdicts", "accuracy"] == start.loc["frozen", "accuracy"]
    with pytest.raises(ValueError, match="report_on"):
        StreamExperiment(experiment.harness, report_on="fit")


def test_the_served_path_never_reads_scores_either(fitted):
    """`serve`'s loop (online_store.SharedLoop: per-request assess, queued, folded per batch into a Store) learns
    the same from permuted score columns: the replay executor without scores drives the same code."""
    import copy

    from emafusion_core.llm.ledger import MemoryStore
    from emafusion_core.online_store import LoopSettings, SharedLoop
    from emafusion_core.persist import learned_arrays

    method, sets, suite = fitted
    cal = sets["calibrate"]
    outcomes = suite.outcomes.copy()
    outcomes["score"] = np.random.default_rng(1).permutation(outcomes["score"].to_numpy())
    permuted = ReplayExecutor(outcomes.drop(columns=["score"]), suite.model_names)
    learned = []
    for executor in (cal.executor, permuted):
        loop = SharedLoop(copy.deepcopy(method), POINT, MemoryStore(), "k", {"fit": "test"},
                          LoopSettings(batch_size=8, explore_share=0.3))
        for i in range(24):
            batch = type(cal.view)(cal.view.queries[i:i + 1], cal.view.embeddings[i:i + 1])
            decision, state = loop.method.decide(batch, executor, POINT, record=True)
            loop.record(loop.assess(batch, decision, state))
        assert loop.version == 3 and loop.optimiser.log.queries == 24 and loop.optimiser.log.verdicts > 0
        learned.append(learned_arrays(loop.method))
    for name in learned[0]:
        np.testing.assert_array_equal(learned[0][name], learned[1][name])


# ---- the cold start of a model added with no labelled outcome (evaluation/cold_start.py) ---------------------

def _cold_suite(routerbench, permute=None):
    """routerbench's every fourth query; permute(outcomes, fit_ids, rng) -> outcomes with some scores permuted."""
    from emafusion_core.data.suite import Suite

    suite = routerbench.subset(sorted(routerbench.query_ids)[::4])
    if permute is None:
        return suite
    from emafusion_core.data import make_splits, split_ids

    fit_ids = set(map(str, split_ids(make_splits(suite.queries, suite.name, 0), "fit")))
    outcomes = permute(suite.outcomes.copy(), fit_ids, np.random.default_rng(7))
    return Suite.from_tables(suite.name, suite.queries, outcomes, suite.models, suite.judgments)


def _cold_run(suite):
    from emafusion_core.evaluation import Harness
    from emafusion_core.evaluation.cold_start import ColdStart
    from emafusion_core.evaluation.self_optimising import StreamExperiment

    stream = StreamExperiment(Harness(suite, HashingEncoder(128), seeds=[0]), batch_size=50, n_budgets=3,
                              explore_share=0.3, report_on="calibrate")
    cold = ColdStart(stream, label_share=0.2, max_stream=100)
    return cold, cold.run(0)


@pytest.fixture(scope="module")
def cold_run(routerbench):
    return _cold_run(_cold_suite(routerbench))


def test_cold_start_rows_are_produced_per_batch_and_deterministic(cold_run, routerbench):
    from emafusion_core.evaluation.cold_start import queries_until

    cold, rows = cold_run
    assert rows["seen"].tolist() == [0, 50, 100]
    assert rows["newcomer"].nunique() == 1
    last, shares = rows.iloc[-1], rows["share_good"].iloc[1:]
    assert np.isfinite(last["aiq"]) and np.isfinite(rows["reference_aiq"].iloc[0])
    assert last["explored"] > 0 and (shares.between(0, 1) | shares.isna()).all()
    summary = queries_until(rows)
    assert len(summary) == 1 and summary["streamed"].iloc[0] == 100
    import pandas as pd

    pd.testing.assert_frame_equal(rows, _cold_run(_cold_suite(routerbench))[1])


def test_cold_start_fit_reads_no_outcome_of_the_newcomer_and_the_stream_reads_no_score(cold_run, routerbench):
    """Permuting the newcomer's scores on fit (its labelled slice included) and every score of the other fit
    queries changes nothing the cold system fits or learns: its table cells are the prior (the pool's mean) and
    the per-batch rows are the same; only the reference (fitted with the newcomer's labels) may differ."""
    import pandas as pd

    cold, rows = cold_run
    newcomer = rows["newcomer"].iloc[0]
    labelled_ids = set()

    def permute(outcomes, fit_ids, rng):
        fit = outcomes["query_id"].isin(fit_ids)
        mine = fit & (outcomes["model"] == newcomer)
        outcomes.loc[mine, "score"] = rng.permutation(outcomes.loc[mine, "score"].to_numpy())
        # and every score of the streamed (unlabelled) fit queries, every model
        streamed = fit & ~outcomes["query_id"].isin(labelled_ids)
        outcomes.loc[streamed, "score"] = rng.permutation(outcomes.loc[streamed, "score"].to_numpy())
        return outcomes

    h = cold.stream.harness
    fit = h.views(0)["fit"]
    labelled, _ = cold.stream.slices(0, 0.2, len(fit))
    labelled_ids.update(fit.queries[i].query_id for i in labelled)
    other, permuted_rows = _cold_run(_cold_suite(routerbench, permute))
    j = h.suite.model_names.index(newcomer)
    for axis, quality in cold.start_quality[0].items():
        np.testing.assert_array_equal(quality, other.start_quality[0][axis])
        assert np.ptp(quality[:, j]) < 1e-12, "the newcomer's cells should hold the prior alone"
    own = [c for c in rows.columns if not c.startswith("reference_")]
    pd.testing.assert_frame_equal(rows[own], permuted_rows[own])
