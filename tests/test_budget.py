"""Budget calibration picks the best knob within budget on calibrate and reads test only for final numbers."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core.evaluation import (Harness, KNNRouter, Scorer, ThresholdCascade, budget_frontier,
                                       choose_hyper, select_by_budget)
from emafusion_core.evaluation.budget import calibrate_budgets
from emafusion_core.features import HashingEncoder


def test_select_by_budget_hand_computed():
    costs = [1.0, 2.0, 2.0, 3.0, 5.0]
    acc = [0.5, 0.7, 0.7, 0.6, 0.9]
    idx, ok = select_by_budget(costs, acc, [0.5, 1.0, 2.5, 3.0, 4.9, 10.0])
    # 0.5: nothing fits -> cheapest, flagged; 2.5 and 3.0: 0.7 at cost 2 (tie -> earlier; 0.6 at 3 is worse);
    # 10: the best overall.
    assert idx.tolist() == [0, 0, 1, 1, 1, 4]
    assert ok.tolist() == [False, True, True, True, True, True]


def test_select_by_budget_prefers_cheaper_on_equal_accuracy():
    idx, _ = select_by_budget([3.0, 1.0, 2.0], [0.8, 0.8, 0.8], [5.0])
    assert idx.tolist() == [1]


class SpyScorer(Scorer):
    """Records which split each scored batch came from."""

    def __init__(self, suite, splits):
        super().__init__(suite)
        self.split_of, self.log = splits, []

    def rows(self, query_ids):
        ids = list(query_ids)
        self.log.append(("rows", {self.split_of[q] for q in ids}))
        return super().rows(ids)

    def score(self, query_ids, decision, rows=None):
        self.log.append(("score", self._last_split(rows, query_ids)))
        return super().score(query_ids, decision, rows)

    def _last_split(self, rows, query_ids):
        if rows is None:
            return {self.split_of[q] for q in query_ids}
        inverse = dict(zip(self._row.to_numpy(), self._row.index))
        return {self.split_of[inverse[r]] for r in rows}


@pytest.fixture(scope="module")
def bench(routerbench):
    return routerbench.subset(sorted(routerbench.query_ids)[::4])


def test_calibration_never_reads_test_and_reads_it_once_per_chosen_setting(bench):
    from emafusion_core.data import make_splits

    splits = make_splits(bench.queries, bench.name, 0).to_dict()
    spy = SpyScorer(bench, splits)
    harness = Harness(bench, HashingEncoder(), seeds=[0], scorer=spy, policies=lambda s, sc: [KNNRouter(ks=(5, 20))])
    result = harness.run()
    scored = [s for kind, s in spy.log if kind == "score"]
    assert all(len(s) == 1 for s in scored)
    first_test = next(i for i, s in enumerate(scored) if s == {"test"})
    assert all(s == {"calibrate"} for s in scored[:first_test])  # every choice is made on calibrate
    assert all(s == {"test"} for s in scored[first_test:])  # then test, and nothing is chosen after
    run = result.run_of("knn", 0)
    assert len(scored) - first_test == run.rows["knob_index"].nunique() == len(run.outcomes)
    assert {"fit"} in [s for kind, s in spy.log if kind == "rows"]  # fit labels for training: allowed


def test_budget_picks_the_best_calibrate_knob_within_budget(bench):
    harness = Harness(bench, HashingEncoder(), seeds=[0])
    views = harness.views(0)
    fit, cal, test = views["fit"], views["calibrate"], views["test"]
    policy = ThresholdCascade()
    policy.fit(harness.fit_data(fit), cal)
    single = harness.scorer.costs(cal.query_ids).mean(axis=0)
    c_range = (single.min(), single.max())
    sweep = choose_hyper(policy, cal, harness.scorer, c_range)
    table = sweep.table()
    budgets = np.geomspace(*c_range, 12)
    chosen = calibrate_budgets(sweep, budgets)
    for budget, row in zip(budgets, chosen.itertuples()):
        within = table[table["cost_usd"] <= budget]
        if len(within):
            assert row.cal_accuracy == within["accuracy"].max()
            assert row.cal_cost_usd <= budget
        else:
            assert not row.feasible and row.cal_cost_usd == table["cost_usd"].min()
    frontier = budget_frontier(policy, cal, test, harness.scorer, budgets, c_range)
    assert {"budget_usd", "cal_accuracy", "cal_cost_usd", "accuracy", "cost_usd", "over_budget"} <= set(frontier)
    # Test cost is reported as measured, even above the budget.
    assert (frontier["over_budget"] == (frontier["cost_usd"] > frontier["budget_usd"])).all()
    assert frontier["cal_accuracy"].is_monotonic_increasing
