"""The state-aware verifier (issue 13): its tree arrays reproduce scikit-learn, its verdicts depend on the answers
bought, answer selection returns a paid answer, cascade grids hold the router-alone points, blind judges warn."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from emafusion_core.cascade import State, run_cascade, select_by_support
from emafusion_core.execution import Batch, Query
from emafusion_core.judges.blind import blind_judges_warning
from emafusion_core.judges.state_verifier import TreeEnsemble


def test_tree_arrays_reproduce_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = ((np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) ** 2 + rng.normal(size=600) * 0.3) > 0.5).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    ours = TreeEnsemble.from_sklearn(clf)
    np.testing.assert_allclose(ours.predict_proba(x), clf.predict_proba(x)[:, 1], rtol=1e-6, atol=1e-9)


class _Fixed:
    """A replay-like executor over fixed texts (no score anywhere)."""

    def __init__(self, texts):
        self.texts = texts

    def run(self, query, model):
        from emafusion_core.execution import Answer

        return Answer(query.query_id, model, self.texts[(query.query_id, model)], 0.01)


def _state(texts_by_model, predicted):
    names = list(texts_by_model)
    n = len(next(iter(texts_by_model.values())))
    queries = [Query(query_id=f"q{i}", prompt="Which?", question="Which?", benchmark="b", category="c",
                     answer_format="multiple_choice") for i in range(n)]
    texts = {(f"q{i}", m): texts_by_model[m][i] for m in names for i in range(n)}
    return State(Batch(queries), names, _Fixed(texts), predicted=np.asarray(predicted, float))


def test_answer_selection_returns_the_best_supported_paid_answer():
    state = _state({"a": ["A", "B"], "b": ["B", "B"], "c": ["B", "C"]}, [[0.5, 0.4, 0.9], [0.5, 0.4, 0.9]])
    rows = np.arange(2)
    for j in range(3):
        state.buy(rows, j)
    pick = select_by_support(state, np.array([0, 2]))
    # query 0: B (b 0.4 + c 0.9) beats A (0.5); its most confident model is c. Query 1: B (0.9) vs C (0.9): the
    # tie goes to the stopping answer's group (c)
    assert pick.tolist() == [2, 2]
    state2 = _state({"a": ["A"], "b": ["B"]}, [[0.9, 0.1]])
    d = run_cascade(state2, np.array([[0, 1]]), None, np.zeros((1, 2)), select="support")
    assert d.final.tolist() == [0] and state2.paid[0].tolist() == [True, False]  # only what was paid


@pytest.fixture(scope="module")
def routerbench_method(routerbench):
    from emafusion_core.features import HashingEncoder
    from emafusion_core.method import EMAFusion
    from suite_support import split_sets

    suite = routerbench.subset(sorted(routerbench.query_ids)[::4])
    enc = HashingEncoder(128)
    sets = split_sets(suite, enc, ("fit", "calibrate"))
    return EMAFusion(encoder=enc, state_verifier=True).fit(sets["fit"]), sets["calibrate"].view


def test_cascade_grid_holds_the_router_alone(routerbench_method):
    method, view = routerbench_method
    pts = method.grid("hybrid", True, ("state-verifier",), view, no_cascade=True, selects=("last", "support"))
    assert any(not p.cascade for p in pts) and {p.select for p in pts if p.cascade} == {"last", "support"}
    assert ("state-verifier",) in method.panels()


def test_blind_judges_warning(routellm):
    text = blind_judges_warning(routellm)
    assert text and "mmlu" in text and "blind" in text


def test_chains_by_category_shorten_or_skip_the_cascade():
    from emafusion_core.method import chains_by_category

    cands = np.array([[0, 1, 2], [0, 1, 2], [3, 4, -1], [0, 1, 2]])
    out = chains_by_category(cands, np.array([2, 2, 4, 1]), ["a", "b", "c", "d"], {"b"}, {"c": 1, "d": 2})
    assert out.tolist() == [[0, 1, 2], [2, -1, -1], [4, -1, -1], [1, 2, -1]]


def test_per_group_choice_is_shrunk_toward_the_global_one():
    from emafusion_core.calibration import choose_per_group, frontier_prices

    rng = np.random.default_rng(0)
    n = 200
    groups = np.array(["big"] * 150 + ["small"] * 50)
    base = (rng.random(n) < 0.6).astype(float)
    better = base.copy()
    better[:150] = np.maximum(better[:150], rng.random(150) < 0.5)  # clearly better on "big"
    noisy = base.copy()
    noisy[150:] = rng.random(50) < 0.62  # about as good on "small": noise
    acc = np.stack([base, better, noisy])
    cost = np.zeros_like(acc)
    assert choose_per_group(acc, cost, groups, price=0.0) == {"big": 1}
    assert choose_per_group(acc, cost, groups, price=0.0, min_group=200) == {}
    # a dearer option must pay for itself at the frontier's price
    assert choose_per_group(acc, cost + np.array([[0], [1.0], [0]]), groups, price=10.0) == {}
    prices = frontier_prices([1, 2, 3, 2.5], [0.5, 0.7, 0.8, 0.6], [0, 1, 2, 3])
    assert set(prices) == {0, 1, 2} and prices[0] == pytest.approx(0.2) and prices[1] == pytest.approx(0.15)


def test_calibration_with_chains_by_category_round_trips(routerbench, routerbench_method):
    from emafusion_core.features import HashingEncoder
    from emafusion_core.method import OperatingPoint, Variant
    from emafusion_core.results import grade
    from suite_support import split_sets

    method, view = routerbench_method
    p = OperatingPoint(categories="task_type/complexity", tau_j=(("*", 0.7), ("x/y", 0.9)), direct=("a/b",),
                       k_by=(("c/d", 2),))
    assert OperatingPoint.from_dict(p.to_dict()) == p and p.by_category and "a/b:direct" in p.label()
    with pytest.raises(ValueError):
        OperatingPoint(categories="colour")
    cal = split_sets(routerbench.subset(sorted(routerbench.query_ids)[::4]), HashingEncoder(128), ("calibrate",))
    cal = cal["calibrate"]
    assert cal.view.query_ids == view.query_ids
    g = lambda d: grade(d, cal.scores, cal.costs, cal.failed)
    variant = Variant(method, "learned", True, panels=[("state-verifier",)], by_category="task_type",
                      executor=cal.executor)
    hyper = variant.hypers()[0]
    pairs = variant.sweep(view, hyper)
    knobs, outcomes = [k for k, _ in pairs], [g(d) for _, d in pairs]
    refined = variant.refined_knobs(view, hyper, knobs, outcomes, g, min_group=2, margin=0.0)
    assert refined and all(k.by_category and k.categories == "task_type" for k in refined)
    cats = np.array(method._categories(view, "task_type"))
    for k in refined:  # each category's queries do exactly what the option chosen for them does
        o = g(variant.decide(view, hyper, k))
        base = knobs.index(replace(k, tau_j=(("*", dict(k.tau_j)["*"]),), direct=(), k_by=(),
                                   categories="task_type"))
        plain = ~np.isin(cats, [c for c in dict(k.tau_j) if c != "*"] + list(k.direct) + [c for c, _ in k.k_by])
        np.testing.assert_array_equal(o.accuracy[plain], outcomes[base].accuracy[plain])
        np.testing.assert_allclose(o.cost[plain], outcomes[base].cost[plain])
    points = method.calibrate(cal, router="learned", n_budgets=4, by_category="task_type")
    assert len(points) == 4


class _Judge:
    """A panel judge with fixed confidences per model (reads nothing)."""

    name = "fixed"

    def __init__(self, conf):
        self.conf = conf

    def judge_rows(self, state, rows, models):
        return np.array([self.conf[int(j)] for j in models], float)


def test_adaptive_next_step_stops_when_no_model_gains_enough():
    from emafusion_core.cascade import run_adaptive
    from emafusion_core.judges.panel import Panel

    texts = {"a": ["A", "A"], "b": ["B", "B"], "c": ["C", "C"]}
    predicted = [[0.5, 0.6, 0.9], [0.5, 0.6, 0.9]]
    unit = np.array([1.0, 2.0, 10.0])
    pool = np.array([[0, 1, 2], [0, 1, 2]])
    # price 0: the best ex-ante model (c, 0.9) first; nothing predicted above its judged 0.95 -> stop
    s = _state(texts, predicted)
    d = run_adaptive(s, pool, Panel([_Judge({0: 0.3, 1: 0.4, 2: 0.95})]), 0.0, unit)
    assert d.final.tolist() == [2, 2] and d.ran.sum(1).tolist() == [1, 1]
    # a high price: the cheap a first (0.5 - 0.1 x 1 beats 0.9 - 1.0); judged 0.3, b would gain 0.3 for 0.2 ->
    # run b (0.4); c gains 0.5 for 1.0 -> stop; the best-judged run answer (b) is returned
    s = _state(texts, predicted)
    d = run_adaptive(s, pool, Panel([_Judge({0: 0.3, 1: 0.4, 2: 0.95})]), 1.0, unit)
    assert d.final.tolist() == [1, 1] and d.ran[0].tolist() == [True, True, False]
