"""Learned router: it learns a per-query rule, is deterministic, stops early, and selects under cost correctly.

All on synthetic data with the HashingEncoder: model "a" (cheap) is right exactly on texts about maths,
model "b" (dear) on everything else, model "c" (mid-priced) never.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from emafusion_core.data import Suite, make_splits, split_ids
from emafusion_core.execution import Query
from emafusion_core.features import HashingEncoder
from emafusion_core.learned import LearnedRouter, TrainConfig, as_mask, select_top_k

MODELS = ["a", "c", "b"]
COSTS = {"a": 0.001, "c": 0.004, "b": 0.01}
MATH = ["algebra", "integral", "equation", "derivative", "matrix", "prime", "geometry", "fraction"]
OTHER = ["poem", "history", "recipe", "novel", "painting", "river", "election", "opera"]
FAST = dict(hidden=(32,), max_epochs=60, patience=5, batch_size=32)  # tiny data needs a tiny net


def make_texts(n: int, offset: int = 0) -> tuple[list[str], np.ndarray]:
    """Alternating maths / other texts and their (n, 3) score rows over MODELS."""
    texts, rows = [], []
    for i in range(offset, offset + n):
        if i % 2 == 0:
            texts.append(f"math question {i}: solve the {MATH[i % 8]} and the {MATH[(i // 8) % 8]}")
            rows.append([1.0, 0.0, 0.0])
        else:
            texts.append(f"tell me about the {OTHER[i % 8]} and the {OTHER[(i // 8) % 8]} number {i}")
            rows.append([0.0, 0.0, 1.0])
    return texts, np.array(rows)


def fitted(seed: int = 0, **options) -> LearnedRouter:
    fit_t, fit_y = make_texts(160)
    cal_t, cal_y = make_texts(60, offset=1000)
    options = {**FAST, **options}
    return LearnedRouter(HashingEncoder(128), MODELS, COSTS, seed=seed, **options).fit(fit_t, fit_y, cal_t, cal_y)


@pytest.fixture(scope="module")
def router() -> LearnedRouter:
    return fitted()


# --- learning -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_learns_which_model_is_right_on_unseen_texts(loss):
    router = fitted(loss=loss)
    texts, truth = make_texts(80, offset=5000)
    pred = router.predict_scores(texts)
    assert pred.shape == (80, 3)
    picked = router.select(pred, k=1)[:, 0]
    assert (truth[np.arange(80), picked] == 1).mean() >= 0.95
    if loss == "bce":
        assert pred.min() >= 0 and pred.max() <= 1


def test_route_batch_embeds_the_question_not_the_few_shot_prompt(router):
    shots = "Example: solve the algebra equation. Example: the integral of a matrix. "
    history = Query("q1", prompt=shots + "tell me about the opera and the river", question="tell me about the opera and the river")
    maths = Query("q2", prompt="tell me about the poem. solve the prime fraction", question="solve the prime fraction geometry")
    routes = router.route_batch([history, maths])
    assert [max(r.info["predicted"], key=r.info["predicted"].get) for r in routes] == ["b", "a"]
    assert [r.primary for r in routes] == ["b", "a"]  # the no-cascade pick is the top utility, not the dearest
    for r in routes:
        assert r.path == "learned" and r.router_cost_usd == 0.0
        assert set(r.info["predicted"]) == set(MODELS)
        assert list(r.candidates) == sorted(r.candidates, key=COSTS.get)  # cheapest first
    assert router.route_batch([]) == []


def test_extra_features_are_used():
    # The texts carry no signal; only the extra column says which model is right.
    rng = np.random.default_rng(0)
    texts = [f"item {w}" for w in rng.integers(0, 10**6, 220)]
    label = rng.integers(0, 2, 220).astype(float)
    scores = np.column_stack([label, np.zeros(220), 1 - label])
    extra = lambda t: np.array([[label[texts.index(x)]] for x in t])  # noqa: E731
    router = LearnedRouter(HashingEncoder(64), MODELS, COSTS, extra_features=extra, **FAST)
    router.fit(texts[:160], scores[:160], texts[160:], scores[160:])
    picked = router.select(router.predict_scores(texts[160:]), k=1)[:, 0]
    assert (scores[np.arange(160, 220), picked] == 1).mean() >= 0.95
    with pytest.raises(ValueError, match="extra features"):
        router.predict_scores(texts[:3], extra=np.zeros((3, 2)))


def test_missing_scores_are_masked_not_learned_as_wrong():
    fit_t, fit_y = make_texts(160)
    cal_t, cal_y = make_texts(60, offset=1000)
    fit_y = fit_y.copy()
    unrun = (np.arange(160) % 2 == 1) & (np.arange(160) % 3 != 0)
    fit_y[unrun, 2] = np.nan  # b not run on two thirds of the queries it would get right
    router = LearnedRouter(HashingEncoder(128), MODELS, COSTS, **FAST).fit(fit_t, fit_y, cal_t, cal_y)
    assert np.isfinite(router.report.fit_losses).all()
    texts, truth = make_texts(40, offset=7000)
    pred = router.predict_scores(texts)
    assert pred[1::2, 2].mean() > 0.7  # read as 0 instead, b would look right only a third of the time


# --- determinism and early stopping -------------------------------------------------------------------
def test_same_seed_same_predictions_and_global_torch_state_untouched():
    texts, _ = make_texts(30, offset=9000)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = fitted(seed=7).predict_scores(texts)
    assert torch.equal(torch.rand(3), expected_draw)  # training did not consume the caller's RNG
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    assert np.array_equal(first, fitted(seed=7).predict_scores(texts))
    assert not np.array_equal(first, fitted(seed=8).predict_scores(texts))


def test_early_stopping_stops_and_keeps_the_best_epoch():
    rng = np.random.default_rng(1)
    texts = [f"noise {w} {v}" for w, v in rng.integers(0, 10**6, (200, 2))]
    scores = rng.integers(0, 2, (200, 3)).astype(float)  # pure noise: calibrate loss soon rises
    router = LearnedRouter(HashingEncoder(64), MODELS, COSTS, hidden=(64,), max_epochs=400, patience=3,
                           lr=1e-2, batch_size=16)
    router.fit(texts[:140], scores[:140], texts[140:], scores[140:])
    rep = router.report
    assert rep.stopped_early and rep.epochs_run < 400
    assert rep.epochs_run == rep.best_epoch + 3
    assert rep.best_cal_loss == min(rep.cal_losses)
    p = np.clip(router.predict_scores(texts[140:]), 1e-7, 1 - 1e-7)
    y = scores[140:]
    kept = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert kept == pytest.approx(rep.best_cal_loss, rel=1e-4)  # the kept weights are the best epoch's


# --- selection ------------------------------------------------------------------------------------------
def test_ties_go_to_the_cheaper_model_and_rows_are_cheapest_first():
    costs = np.array([3.0, 1.0, 2.0])
    tie = np.full((2, 3), 0.5)
    assert select_top_k(tie, costs, k=1).tolist() == [[1], [1]]
    assert select_top_k(tie, costs, k=2).tolist() == [[1, 2], [1, 2]]
    pred = np.array([[0.9, 0.1, 0.5]])
    assert select_top_k(pred, costs, k=2).tolist() == [[2, 0]]  # best two, cheaper (2.0) first


def test_cost_weight_and_budget_move_the_choice_to_cheaper_models():
    costs = np.array([1.0, 10.0])
    pred = np.array([[0.8, 0.9]])
    assert select_top_k(pred, costs, k=1, cost_weight=0.0).tolist() == [[1]]
    assert select_top_k(pred, costs, k=1, cost_weight=0.5).tolist() == [[0]]  # 0.8-0.05 > 0.9-0.5
    assert select_top_k(pred, costs, k=1, max_cost_usd=5.0).tolist() == [[0]]


def test_router_budget_excludes_dear_models(router):
    texts, _ = make_texts(20, offset=3000)
    pred = router.predict_scores(texts)
    assert (router.select(pred, k=1)[1::2, 0] == 2).all()  # unconstrained: b on non-maths
    chosen = router.select(pred, k=3, max_cost_usd=0.005)
    assert chosen.shape == (20, 2) and not (chosen == 2).any()


def test_k_larger_than_the_pool_returns_every_allowed_model():
    pred = np.array([[0.2, 0.9, 0.5], [0.7, 0.1, 0.3]])
    costs = np.array([1.0, 3.0, 2.0])
    assert select_top_k(pred, costs, k=10).tolist() == [[0, 2, 1], [0, 2, 1]]
    assert select_top_k(pred, costs, k=10, max_cost_usd=2.5).tolist() == [[0, 2], [0, 2]]
    assert as_mask(np.array([[0, 2]]), 3).tolist() == [[True, False, True]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=0), "k must be"),
    (dict(k=1.5), "k must be"),
    (dict(cost_weight=-0.1), "cost_weight"),
    (dict(max_cost_usd=0.0001), "excludes every model"),
    (dict(max_cost_usd=-1.0), "max_cost_usd"),
    (dict(loss="hinge"), "loss must be"),
    (dict(patience=0), "patience"),
    (dict(dropout=1.0), "dropout"),
    (dict(model_names=["a", "a", "b"]), "distinct"),
    (dict(model_costs=[0.1, 0.2]), "entries"),
    (dict(model_costs={"a": 0.1, "b": 0.2}), "no cost for models"),
    (dict(model_costs=[0.1, -0.2, 0.3]), ">= 0"),
    (dict(extra_features=np.zeros((3, 2))), "callable"),
])
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    args = {**dict(encoder=HashingEncoder(16), model_names=MODELS, model_costs=COSTS), **kwargs}
    with pytest.raises(ValueError, match=message):
        LearnedRouter(**args)


@pytest.mark.parametrize("scores, message", [
    (np.full((4, 3), 2.0), r"\[0, 1\]"),
    (np.zeros((4, 2)), "shape"),
    (np.full((4, 3), np.nan), "no observed"),
])
def test_invalid_scores_raise_clear_errors(scores, message):
    router = LearnedRouter(HashingEncoder(16), MODELS, COSTS, **FAST)
    texts, good = make_texts(4)
    with pytest.raises(ValueError, match=message):
        router.fit(texts, scores, texts, good)


def test_routing_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="fit"):
        LearnedRouter(HashingEncoder(16), MODELS, COSTS).predict_scores(["x"])


# --- no score at routing time -----------------------------------------------------------------------------
def test_permuting_the_score_table_after_fit_leaves_routing_unchanged():
    fit_t, fit_y = make_texts(160)
    cal_t, cal_y = make_texts(60, offset=1000)
    table = pd.DataFrame(fit_y, columns=MODELS)
    router = LearnedRouter(HashingEncoder(128), MODELS, COSTS, **FAST).fit(fit_t, table, cal_t, cal_y)
    queries = [Query(f"q{i}", prompt=t) for i, t in enumerate(make_texts(20, offset=4000)[0])]
    before = router.route_batch(queries)
    table.iloc[:, :] = table.to_numpy()[::-1, ::-1]  # in place: rows and columns scrambled
    cal_y[:] = cal_y[::-1]
    assert router.route_batch(queries) == before

    # Column order does not matter either: a DataFrame is aligned to model_names by name.
    shuffled = pd.DataFrame(fit_y, columns=MODELS)[["b", "a", "c"]]
    again = LearnedRouter(HashingEncoder(128), MODELS, COSTS, **FAST).fit(fit_t, shuffled, cal_t,
                                                                           make_texts(60, offset=1000)[1])
    assert again.route_batch(queries) == before


def synthetic_suite(n: int = 200) -> Suite:
    texts, scores = make_texts(n)
    queries = pd.DataFrame({"query_id": [f"q{i}" for i in range(n)], "benchmark": "syn", "prompt": texts})
    outcomes = pd.DataFrame([dict(query_id=f"q{i}", model=m, score=scores[i, j], cost_usd=COSTS[m])
                             for i in range(n) for j, m in enumerate(MODELS)])
    return Suite.from_tables("syn", queries, outcomes, pd.DataFrame({"model": MODELS, "family": MODELS}))


def test_fitting_the_method_never_reads_test_scores():
    """The one way to fit the learned router (EMAFusion.fit on the fit split's TrainingSet) cannot see a test
    score or cost: flipping them leaves the fitted router's predictions unchanged."""
    from emafusion_core.data import training_set
    from emafusion_core.method import EMAFusion

    suite = synthetic_suite()
    splits = make_splits(suite.queries, suite.name, 0)
    test = set(split_ids(splits, "test"))
    flipped = suite.outcomes.copy()
    on_test = flipped["query_id"].isin(test)
    flipped.loc[on_test, "score"] = 1 - flipped.loc[on_test, "score"]
    flipped.loc[on_test, "cost_usd"] *= 100
    other = Suite.from_tables("syn", suite.queries, flipped, suite.models)
    texts = suite.queries["question"].tolist()
    enc = HashingEncoder(128)
    fit_ids = list(split_ids(splits, "fit"))
    labels = {"task_type": "math", "complexity": "medium", "domain": "stem", "io_format": "free_text"}
    fitted = []
    for s in (suite, other):
        s = Suite.from_tables("syn", s.queries.assign(**labels), s.outcomes, s.models)
        fit = training_set(s, fit_ids, embeddings=enc.encode(s.queries.set_index("query_id").loc[fit_ids, "question"]
                                                             .tolist()))
        fitted.append(EMAFusion().fit(fit))
    x = enc.encode(texts)
    assert fitted[0].model_names_ == suite.model_names == ["a", "c", "b"]
    assert np.array_equal(fitted[0].learned_.predict_from_embeddings(x), fitted[1].learned_.predict_from_embeddings(x))
    assert np.array_equal(fitted[0].unit_cost_, fitted[1].unit_cost_)
