"""Metrics on small cases whose expected values are worked out by hand in the comments."""
from functools import partial

import numpy as np
import pytest

from emafusion_core.evaluation.metrics import (
    aiq, aiq_batched, apgr, bootstrap_ci, bootstrap_curve_ci, bootstrap_indices, bootstrap_means,
    bootstrap_policy_ci, cpt, hull_quality_at, ibc, ibc_lift, max_gain, mean_ci_over_seeds, ndch, ndch_batched,
    normalised_auc, normalised_auc_batched, oracle_gap, paired_bootstrap, pgr, zero_router_hull,
)

approx = partial(pytest.approx, abs=1e-12)


# --- NDCH --------------------------------------------------------------------------------------------------------

def test_ndch_drops_points_below_hull_and_after_the_peak():
    # Sorted: A(0,0) B(1,.6) F(1.5,.2) C(2,.7) D(3,1) E(4,.8).
    # F and C lie below the chord B-D (at cost 2 the chord is .6 + .4/2 = .8 > .7); E is on the hull but
    # below the running max 1.0. NDCH = A, B, D.
    hc, hq = ndch([3, 1, 2, 0, 4, 1.5], [1.0, 0.6, 0.7, 0.0, 0.8, 0.2])
    assert hc.tolist() == [0, 1, 3]
    assert hq.tolist() == approx([0.0, 0.6, 1.0])


def test_ndch_ties_in_cost_keep_best_quality():
    # (1,.3) and (1,.5) share a cost: keep .5. Then (1,.5) -> (2,.6) is the hull.
    hc, hq = ndch([1, 1, 2], [0.3, 0.5, 0.6])
    assert hc.tolist() == [1, 2]
    assert hq.tolist() == approx([0.5, 0.6])


def test_ndch_single_point_and_flat_tail():
    hc, hq = ndch([2.0], [0.4])
    assert hc.tolist() == [2.0] and hq.tolist() == [0.4]
    # (2,.5) costs more for no gain over (1,.5): dropped.
    hc, hq = ndch([1, 2], [0.5, 0.5])
    assert hc.tolist() == [1] and hq.tolist() == [0.5]


def test_ndch_rejects_nan_and_empty():
    with pytest.raises(ValueError):
        ndch([1, 2], [0.5, np.nan])
    with pytest.raises(ValueError):
        ndch([], [])
    with pytest.raises(ValueError):
        ndch([1, 2], [0.5])


# --- AIQ and normalised AUC ----------------------------------------------------------------------------------

def test_aiq_flat_extension_to_c_max():
    # NDCH (0,0) (1,.6) (3,1); range [0,4].
    # Area: [0,1] .6/2 = .3; [1,3] (.6+1)/2*2 = 1.6; [3,4] flat at 1 -> 1.0. Total 2.9 / 4 = .725.
    assert aiq([3, 1, 2, 0, 4, 1.5], [1.0, 0.6, 0.7, 0.0, 0.8, 0.2], 0, 4) == approx(0.725)


def test_aiq_left_edge_is_zero_below_cheapest_point():
    # Points (1,.5) (3,.9) on [0,4]: [0,1] contributes 0 (cannot operate there); [1,3] (.5+.9)/2*2 = 1.4;
    # [3,4] flat .9. Total 2.3 / 4 = .575 (a flat-left convention would give 2.8/4 = .7).
    assert aiq([1, 3], [0.5, 0.9], 0, 4) == approx(0.575)


def test_aiq_sub_range_and_single_point():
    # NDCH (0,0) (1,.6) (3,1) on [2,3]: q(2) = .8, area (.8+1)/2 = .9, range 1 -> .9.
    assert aiq([0, 1, 3], [0.0, 0.6, 1.0], 2, 3) == approx(0.9)
    # One point (1,.5) on [0,2]: 0 on [0,1], .5 on [1,2] -> .5 / 2 = .25.
    assert aiq([1], [0.5], 0, 2) == approx(0.25)
    # Cheapest point beyond c_max: nothing reachable -> 0.
    assert aiq([5], [0.9], 0, 2) == approx(0.0)
    with pytest.raises(ValueError):
        aiq([1], [0.5], 2, 1)


def test_normalised_auc_uses_points_not_hull_with_flat_ends():
    # Points (1,.5) (2,.4) (3,.9) on [0,4]: [0,1] flat .5; [1,2] .45; [2,3] .65; [3,4] .9 -> 2.5 / 4 = .625.
    assert normalised_auc([2, 1, 3], [0.4, 0.5, 0.9], 0, 4) == approx(0.625)


def test_normalised_auc_ties_take_max():
    # (1,.5) and (1,.7): keep .7. On [1,3]: (.7+.9)/2*2 = 1.6 / 2 = .8.
    assert normalised_auc([1, 1, 3], [0.5, 0.7, 0.9], 1, 3) == approx(0.8)


# --- Batched AIQ / nAUC / NDCH (B curves at once, as bootstrap_curve_ci uses them) ---------------------------

def _reference_ndch(c, q):
    """The NDCH by its definition, independent of the monotone chain: best quality per cost; a point is an
    upper-hull vertex iff some line through it has every other point strictly below, i.e. the least slope from a
    cheaper point exceeds the greatest slope to a dearer one; then keep the points that beat all cheaper ones."""
    order = np.lexsort((-q, c))
    c, q = c[order], q[order]
    first = np.r_[True, c[1:] != c[:-1]]
    c, q = c[first], q[first]
    on = [min(((q[k] - q[i]) / (c[k] - c[i]) for i in range(k)), default=np.inf)
          > max(((q[j] - q[k]) / (c[j] - c[k]) for j in range(k + 1, len(c))), default=-np.inf)
          for k in range(len(c))]
    c, q = c[on], q[on]
    gains = q > np.maximum.accumulate(np.r_[-np.inf, q[:-1]])
    return c[gains], q[gains]


def _reference_area(x, y, lo, hi):
    """Integral of np.interp (flat ends) over [lo, hi] by the trapezoid on every knot inside."""
    if hi <= lo:
        return 0.0
    grid = np.unique(np.r_[lo, x[(x > lo) & (x < hi)], hi])
    return float(np.trapezoid(np.interp(grid, x, y), grid))


def _curves(rng, n_pts, n_rows=120):
    """Rows of every kind the batched code must get right, cost range [.2, .8] in mind: continuous random
    points (some below .2 and beyond .8), a coarse dyadic grid (ties at equal cost, collinear points, exact
    arithmetic), rising and falling curves, all points at one cost, and curves starting above c_min."""
    kinds = [
        lambda: (rng.uniform(-0.2, 1.2, n_pts), rng.uniform(0, 1, n_pts)),
        lambda: (rng.integers(0, 5, n_pts) / 4, rng.integers(0, 9, n_pts) / 8),
        lambda: (np.sort(rng.uniform(0, 1, n_pts)), np.sort(rng.uniform(0, 1, n_pts))),
        lambda: (np.sort(rng.uniform(0, 1, n_pts)), np.sort(rng.uniform(0, 1, n_pts))[::-1]),
        lambda: (np.full(n_pts, rng.uniform(0, 1)), rng.uniform(0, 1, n_pts)),
        lambda: (rng.uniform(0.5, 1.0, n_pts), rng.uniform(0, 1, n_pts)),
        lambda: (np.arange(n_pts) / 4, np.arange(n_pts) / 8),  # all collinear
    ]
    rows = [kinds[r % len(kinds)]() for r in range(n_rows)]
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


@pytest.mark.parametrize("n_pts", [1, 2, 3, 6, 15])
def test_batched_curve_metrics_equal_the_definition_and_the_scalar_ones_row_by_row(n_pts):
    rng = np.random.default_rng(n_pts)
    c, q = _curves(rng, n_pts)
    hc_b, hq_b = ndch_batched(c, q)
    for lo, hi in [(0.2, 0.8), (0.0, 1.0)]:
        a_b, n_b = aiq_batched(c, q, lo, hi), normalised_auc_batched(c, q, lo, hi)
        for r in range(len(c)):
            hc, hq = _reference_ndch(c[r], q[r])
            k = len(hc)
            assert hc_b[r, :k].tolist() == approx(hc.tolist()) and hq_b[r, :k].tolist() == approx(hq.tolist())
            assert (hc_b[r, k:] == hc_b[r, k - 1]).all() and (hq_b[r, k:] == hq_b[r, k - 1]).all()  # padding
            assert a_b[r] == approx(_reference_area(hc, hq, max(lo, hc[0]), hi) / (hi - lo))
            assert a_b[r] == approx(aiq(c[r], q[r], lo, hi))
            order = np.lexsort((-q[r], c[r]))
            pc, pq = c[r][order], q[r][order]
            first = np.r_[True, pc[1:] != pc[:-1]]
            assert n_b[r] == approx(_reference_area(pc[first], pq[first], lo, hi) / (hi - lo))
            assert n_b[r] == approx(normalised_auc(c[r], q[r], lo, hi))
        # The zero-router hull's nAUC: nAUC of the padded knots == nAUC of the scalar hull's knots.
        hull_b = normalised_auc_batched(hc_b, hq_b, lo, hi)
        assert hull_b.tolist() == approx([normalised_auc(*ndch(c[r], q[r]), lo, hi) for r in range(len(c))])


def test_batched_curve_metrics_exact_cases_and_errors():
    # Rows of test_aiq_*: .725 (flat right), .575 (zero left of the cheapest point), one point .25, beyond c_max 0.
    c = np.array([[3, 1, 2, 0, 4, 1.5], [1, 3, 3, 3, 3, 3], [1] * 6, [5] * 6], dtype=float)
    q = np.array([[1.0, 0.6, 0.7, 0.0, 0.8, 0.2], [0.5, 0.9, 0.1, 0.9, 0.2, 0.3], [0.5] * 6, [0.9] * 6])
    assert aiq_batched(c, q, 0, 4)[:2].tolist() == approx([0.725, 0.575])
    assert aiq_batched(c, q, 0, 2)[2:].tolist() == approx([0.25, 0.0])
    with pytest.raises(ValueError):
        aiq_batched([1.0, 2.0], [0.5, 0.6], 0, 1)  # 1-D: not a batch
    with pytest.raises(ValueError):
        normalised_auc_batched(np.ones((2, 0)), np.ones((2, 0)), 0, 1)
    with pytest.raises(ValueError):
        normalised_auc_batched([[1.0, np.nan]], [[0.5, 0.6]], 0, 1)


# --- Zero router and max gain --------------------------------------------------------------------------------

def test_zero_router_hull_and_interpolation():
    # Models (1,.5) (2,.55) (3,.6) (4,.9). Chord (1,.5)-(4,.9) is .6333 at 2 and .7667 at 3: both models below.
    hull = zero_router_hull([1, 2, 4, 3], [0.5, 0.55, 0.9, 0.6])
    assert hull.costs.tolist() == [1, 4]
    # At 2.5: .5 + .4 * 1.5/3 = .7; flat beyond both ends.
    assert hull_quality_at(hull, 2.5) == approx(0.7)
    assert hull_quality_at(hull, [0.0, 10.0]).tolist() == approx([0.5, 0.9])


def test_max_gain():
    hull = zero_router_hull([1, 4], [0.5, 0.9])
    # Leads: (2.5,.75) -> .75-.70 = .05; (4,.85) -> -.05; (.5,.52) -> .52-.5 (flat left) = .02. Max .05.
    assert max_gain([2.5, 4, 0.5], [0.75, 0.85, 0.52], hull) == approx(0.05)
    # All below the hull: the gain is negative, -.1.
    assert max_gain([4], [0.8], hull) == approx(-0.1)


# --- APGR / CPT ----------------------------------------------------------------------------------------------

def test_pgr():
    # weak .5, strong .9: .7 recovers half the gap.
    assert pgr(0.7, 0.5, 0.9) == approx(0.5)
    with pytest.raises(ValueError):
        pgr(0.7, 0.5, 0.5)


def test_apgr_with_and_without_endpoints():
    # Shares .2, .6 with qualities .6, .8 -> PGR .25, .75 (weak .5, strong .9).
    # Flat ends: .25*.2 + (.25+.75)/2*.4 + .75*.4 = .05 + .2 + .3 = .55.
    assert apgr([0.6, 0.2], [0.8, 0.6], 0.5, 0.9) == approx(0.55)
    # With (0,0) and (1,1): .25/2*.2 + .2 + (.75+1)/2*.4 = .025 + .2 + .35 = .575.
    assert apgr([0.2, 0.6], [0.6, 0.8], 0.5, 0.9, include_endpoints=True) == approx(0.575)
    with pytest.raises(ValueError):
        apgr([1.2], [0.8], 0.5, 0.9)


def test_cpt_interpolates_and_is_nan_when_never_reached():
    s, q = [0.2, 0.6], [0.6, 0.8]  # PGR .25, .75
    # x=.5: on segment .2->.6, .2 + (.5-.25)/.5 * .4 = .4.
    assert cpt(s, q, 0.5, 0.9, 0.5) == approx(0.4)
    # x=.9: never reached on the measured span.
    assert np.isnan(cpt(s, q, 0.5, 0.9, 0.9))
    # With (1, strong): .6 + (.9-.75)/.25 * .4 = .84.
    assert cpt(s, q, 0.5, 0.9, 0.9, include_endpoints=True) == approx(0.84)
    # x=.1 already met by the first measured point: its share .2 (not 0); with (0, weak): .1/.25*.2 = .08.
    assert cpt(s, q, 0.5, 0.9, 0.1) == approx(0.2)
    assert cpt(s, q, 0.5, 0.9, 0.1, include_endpoints=True) == approx(0.08)
    out = cpt(s, q, 0.5, 0.9, [0.5, 0.9])
    assert out[0] == approx(0.4) and np.isnan(out[1])


def test_cpt_takes_least_share_on_non_monotone_curve():
    # Shares .1 .3 .5 -> PGR .5 .25 .875. x=.6: first knot >= .6 is .5; segment .3->.5:
    # .3 + (.6-.25)/(.875-.25) * .2 = .3 + .112 = .412. x=.4 is met by the first point: .1.
    assert cpt([0.1, 0.3, 0.5], [0.7, 0.6, 0.85], 0.5, 0.9, 0.6) == approx(0.412)
    assert cpt([0.1, 0.3, 0.5], [0.7, 0.6, 0.85], 0.5, 0.9, 0.4) == approx(0.1)


# --- IBC lift and oracle gap ---------------------------------------------------------------------------------

def test_ibc_lift():
    # Small (c=1, q=.5), large (c=5, q=.9): IBC_base = .4/4 = .1.
    # (2,.7): IBC .2/1 = .2, lift +1.0; (3,.6): IBC .1/2 = .05, lift -.5.
    assert ibc(0.7, 2, 0.5, 1) == approx(0.2)
    assert ibc_lift(0.7, 2, 0.5, 1, 0.9, 5) == approx(1.0)
    assert ibc_lift([0.7, 0.6], [2, 3], 0.5, 1, 0.9, 5).tolist() == approx([1.0, -0.5])
    # The large model itself sits on the base line: lift 0.
    assert ibc_lift(0.9, 5, 0.5, 1, 0.9, 5) == approx(0.0)
    with pytest.raises(ValueError):
        ibc_lift(0.7, 2, 0.5, 1, 0.9, 1)


def test_oracle_gap():
    assert oracle_gap(0.7, 0.9) == approx(0.2)
    assert oracle_gap([0.7, 0.9], 0.9).tolist() == approx([0.2, 0.0])


# --- Bootstrap and seeds -------------------------------------------------------------------------------------

def test_bootstrap_means_match_explicit_resampling():
    v = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    idx = bootstrap_indices(5, 50, seed=3)
    assert bootstrap_means(v, 50, seed=3) == approx(v[idx].mean(axis=1))
    # Per-query rows with several columns resample whole rows.
    m = np.stack([v, 10 * v], axis=1)
    assert bootstrap_means(m, 50, seed=3) == approx(m[idx].mean(axis=1))


def test_bootstrap_ci_deterministic_and_contains_estimate():
    v = [0, 1, 1, 0, 1, 1, 1, 0, 1, 0]  # mean .6
    a = bootstrap_ci(v, n_boot=500, seed=7)
    b = bootstrap_ci(v, n_boot=500, seed=7)
    assert a == b
    assert a.estimate == approx(0.6)
    assert a.low <= 0.6 <= a.high and a.low < a.high
    # The seed drives the draws (the percentiles of so few 0/1 values may coincide across seeds).
    assert not np.array_equal(bootstrap_means(v, 500, seed=7), bootstrap_means(v, 500, seed=8))
    # Constant values: every resample has mean 1, so the interval collapses.
    assert tuple(bootstrap_ci([1, 1, 1], n_boot=100, seed=0)) == approx((1.0, 1.0, 1.0))


def test_bootstrap_ci_statistic_batched_and_not():
    # Columns (a, b); statistic a - b. Full sample: mean a = .5, mean b = .25 -> .25.
    v = np.array([[1, 0], [0, 0], [1, 1], [0, 0]], dtype=float)
    batched = bootstrap_ci(v, lambda m: m[:, 0] - m[:, 1], n_boot=200, seed=1)
    looped = bootstrap_ci(v, lambda m: m[0] - m[1], n_boot=200, seed=1, batched=False)
    assert batched.estimate == approx(0.25)
    assert tuple(batched) == approx(tuple(looped))


def test_bootstrap_policy_ci():
    acc = [1, 0, 1, 1]      # .75
    usd = [1, 1, 3, 3]      # 2.0
    out = bootstrap_policy_ci(acc, usd, n_boot=300, seed=0)
    assert out["accuracy"].estimate == approx(0.75) and out["cost"].estimate == approx(2.0)
    assert out["cost"].low <= 2.0 <= out["cost"].high


def test_bootstrap_curve_ci_of_aiq():
    # Two operating points; costs 1 and 3 for every query; accuracy means .5 and .75.
    # AIQ on [1,3]: (.5+.75)/2*2 / 2 = .625.
    acc = np.array([[1, 1], [0, 1], [1, 1], [0, 0]], dtype=float)
    usd = np.array([[1, 3]] * 4, dtype=float)
    ci = bootstrap_curve_ci(acc, usd, partial(aiq, c_min=1, c_max=3), n_boot=300, seed=0)
    assert ci.estimate == approx(0.625)
    assert ci.low <= 0.625 <= ci.high


@pytest.mark.parametrize("metric, batched_metric", [
    (partial(aiq, c_min=0.2, c_max=0.8), partial(aiq_batched, c_min=0.2, c_max=0.8)),
    (partial(normalised_auc, c_lo=0.2, c_hi=0.8), partial(normalised_auc_batched, c_lo=0.2, c_hi=0.8)),
])
def test_bootstrap_curve_ci_batched_equals_one_call_per_resample(metric, batched_metric):
    # 60 queries x 5 points with 0/1 accuracy and a few price levels: resamples tie costs and cross curves.
    rng = np.random.default_rng(4)
    acc = (rng.uniform(size=(60, 5)) < np.linspace(0.3, 0.9, 5)).astype(float)
    usd = rng.choice([0.1, 0.5, 1.0], size=(60, 5)) * np.linspace(0.2, 1.2, 5)
    looped = bootstrap_curve_ci(acc, usd, metric, n_boot=300, seed=2)
    batched = bootstrap_curve_ci(acc, usd, batched_metric, n_boot=300, seed=2, batched=True)
    assert isinstance(batched.estimate, float) and tuple(batched) == approx(tuple(looped))


def test_seed_metrics_batched_equals_the_scalar_path():
    from suite_support import user_style_tables

    from emafusion_core.data import Suite
    from emafusion_core.evaluation import Harness, KNNRouter, Oracle, SingleModel, seed_metrics
    from emafusion_core.features import HashingEncoder

    suite = Suite.from_tables("mine", *user_style_tables(n_per_benchmark=30))
    policies = lambda s, sc: [SingleModel(m) for m in s.model_names] + [Oracle(sc), KNNRouter(ks=(5,))]  # noqa: E731
    result = Harness(suite, HashingEncoder(), seeds=[0], n_budgets=5, policies=policies).run()
    fast, slow = seed_metrics(result, n_boot=200), seed_metrics(result, n_boot=200, batched=False)
    cols = [c for c in fast.columns if c.startswith(("aiq", "nauc"))]
    assert fast[cols].notna().to_numpy().sum() > 20  # the zero-router hull row included
    np.testing.assert_allclose(fast[cols].to_numpy(float), slow[cols].to_numpy(float), rtol=0, atol=1e-12)
    assert fast.drop(columns=cols).equals(slow.drop(columns=cols))


def test_paired_bootstrap_identical_policies():
    a = [1, 0, 1, 1, 0]
    out = paired_bootstrap(a, a, n_boot=200, seed=0)
    assert (out.diff, out.low, out.high, out.p_value) == approx((0.0, 0.0, 0.0, 1.0))


def test_paired_bootstrap_clear_difference():
    # a always right, b right on 5 of 50: diff .9; every resampled diff is > 0, so p = 0.
    a = np.ones(50)
    b = np.r_[np.ones(5), np.zeros(45)]
    out = paired_bootstrap(a, b, n_boot=500, seed=0)
    assert out.diff == approx(0.9)
    assert 0 < out.low <= 0.9 <= out.high
    assert out.p_value == 0.0
    # Swapped: diff -.9, every resampled diff < 0, still p = 0 (two-sided).
    back = paired_bootstrap(b, a, n_boot=500, seed=0)
    assert back.diff == approx(-0.9) and back.high < 0 and back.p_value == 0.0


def test_mean_ci_over_seeds():
    # [1,2,3]: mean 2, sd 1, se 1/sqrt(3) = .57735; t(.975, df=2) = 4.302653 -> half-width 2.484138.
    ci = mean_ci_over_seeds([1, 2, 3])
    assert ci.estimate == approx(2.0)
    assert ci.low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert ci.high == pytest.approx(2 + 2.484138, abs=1e-6)
    one = mean_ci_over_seeds([0.7])
    assert one.estimate == approx(0.7) and np.isnan(one.low) and np.isnan(one.high)


def test_winners_table_names_each_task_best_model_and_the_oracle():
    from suite_support import tiny_tables

    from emafusion_core.data import Suite
    from emafusion_core.evaluation.tables import winners_table

    q, o, m = tiny_tables()  # dear is always right; cheap on queries 0 and 3
    table = winners_table(Suite.from_tables("mine", q, o, m)).set_index("task")
    assert table.loc["all", "best_model"] == "dear" and table.loc["all", "best_accuracy"] == 1.0
    assert table.loc["all", "oracle_accuracy"] == 1.0 and table.loc["all", "gap_to_runner_up"] == pytest.approx(4 / 6)
    assert set(table.index) == {"a", "b", "all"} and table.loc["a", "queries"] == 3


def test_one_verdict_rule_for_every_claim():
    from emafusion_core.evaluation.claims import verdict

    assert verdict(0.5, 3.0, 0.0, 2.6) == "holds"  # CI on the claimed side, reaching the paper's size
    assert verdict(0.5, 1.0, 0.0, 2.6) == "holds in shape"  # direction holds, size falls short
    assert verdict(-2.0, -0.1, 0.0, 2.6) == "does not hold on our data"
    assert verdict(-0.45, 0.91, 0.0, 2.6) == "inconclusive"  # a gap whose CI straddles 0 is no "holds in shape"
    assert verdict(1.2, 1.5, 1.0, 4.0) == "holds in shape"  # cheaper than the average model, not 4x
    assert verdict(np.nan, np.nan) == "inconclusive"
