"""Replay returns what was recorded, never a score; the Scorer turns decisions into the right means."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.data import Suite, make_splits, split_ids
from emafusion_core.evaluation import Decision, ReplayExecutor, Scorer, queries_of
from emafusion_core.execution import Answer

from suite_support import tiny_tables


def _suite_with_marked_scores():
    """Tiny suite whose scores are odd values (0.1234...) no cost or token count can equal by accident."""
    queries, outcomes, models = tiny_tables(8)
    outcomes = outcomes.copy()
    outcomes["score"] = 0.1234 + 0.0001 * np.arange(len(outcomes))
    outcomes["response"] = [f"answer {i}" for i in range(len(outcomes))]
    outcomes["cost_usd"] = 0.5 + np.arange(len(outcomes)) * 1e-3
    return Suite.from_tables("marked", queries, outcomes, models)


def _walk(obj, seen=None):
    """Every leaf value reachable from an object's attributes, containers, arrays and frames."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        yield from np.asarray(obj.to_numpy()).ravel().tolist()
    elif isinstance(obj, np.ndarray):
        yield from obj.ravel().tolist()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(k, seen)
            yield from _walk(v, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _walk(v, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from _walk(vars(obj), seen)
    else:
        yield obj


def test_replay_returns_recorded_response_and_cost():
    suite = _suite_with_marked_scores()
    executor = ReplayExecutor.for_suite(suite)
    queries = {q.query_id: q for q in queries_of(suite, suite.query_ids)}
    for row in suite.outcomes.itertuples():
        answer = executor.run(queries[row.query_id], row.model)
        assert isinstance(answer, Answer)
        assert (answer.query_id, answer.model, answer.response, answer.cost_usd) == (
            row.query_id, row.model, row.response, row.cost_usd)
        assert answer.ok
    assert executor.calls == len(suite.outcomes)
    with pytest.raises(KeyError):
        executor.run(queries["q0"], "no-such-model")


def test_missing_response_is_an_error_answer_that_is_still_charged(tiny_suite):
    executor = ReplayExecutor.for_suite(tiny_suite)
    answer = executor.run(queries_of(tiny_suite, ["q1"])[0], "dear")
    assert answer.response is None and not answer.ok and answer.cost_usd == 0.01


def test_no_score_is_reachable_through_the_executor():
    suite = _suite_with_marked_scores()
    executor = ReplayExecutor.for_suite(suite)
    scores = set(np.round(suite.outcomes["score"], 10))
    leaves = [v for v in _walk(executor) if isinstance(v, (float, np.floating))]
    assert leaves, "the walk should see the recorded costs"
    assert not scores & set(np.round(leaves, 10))
    assert not any(isinstance(v, Suite) for v in _walk(executor))
    query = queries_of(suite, ["q3"])[0]
    assert not {f for f in vars(executor.run(query, "dear")).values() if isinstance(f, float)} & scores


def test_permuting_scores_leaves_every_answer_unchanged():
    suite = _suite_with_marked_scores()
    permuted = suite.outcomes.copy()
    permuted["score"] = np.random.default_rng(0).permutation(permuted["score"].to_numpy())
    other = Suite.from_tables("marked", suite.queries, permuted, suite.models)
    a, b = ReplayExecutor.for_suite(suite), ReplayExecutor.for_suite(other)
    for query in queries_of(suite, suite.query_ids):
        for model in suite.model_names:
            assert a.run(query, model) == b.run(query, model)


def test_single_model_accuracy_is_the_mean_score_on_the_split(routerbench):
    scorer = Scorer(routerbench)
    test = list(split_ids(make_splits(routerbench.queries, routerbench.name, 0), "test"))
    expected = routerbench.scores.loc[test].mean()
    for j, model in enumerate(routerbench.model_names):
        outcome = scorer.score(test, Decision(final=np.full(len(test), j)))
        assert outcome.accuracy.mean() == pytest.approx(expected[model])
        assert outcome.cost.mean() == pytest.approx(routerbench.costs.loc[test, model].mean())


def test_a_cascade_pays_for_every_model_it_ran(tiny_suite):
    scorer = Scorer(tiny_suite)
    ids = list(tiny_suite.query_ids)
    ran = np.ones((len(ids), 2), bool)
    outcome = scorer.score(ids, Decision(final=np.ones(len(ids), int), ran=ran, judge_calls=np.ones(len(ids)),
                                         judge_cost=np.full(len(ids), 0.002)))
    assert outcome.model_cost == pytest.approx(np.full(len(ids), 0.011))
    assert outcome.cost == pytest.approx(np.full(len(ids), 0.013))
    summary = outcome.summary(tiny_suite.model_names)
    assert summary["share:dear"] == 1.0 and summary["judge_calls"] == 1.0 and summary["models_run"] == 2.0
    assert summary["judge_share_of_cost"] == pytest.approx(0.002 / 0.013)


def test_a_recorded_failure_is_a_paid_failed_answer_that_scores_zero():
    from suite_support import tiny_tables

    from emafusion_core.execution import ErrorKind

    q, o, m = tiny_tables()
    o["response"] = "an answer"
    o["error_kind"] = None
    failed_row = o.index[(o["query_id"] == "q1") & (o["model"] == "dear")][0]
    o.loc[failed_row, ["score", "error_kind", "response"]] = [None, "provider_error", None]
    suite = Suite.from_tables("mine", q, o, m)
    answer = ReplayExecutor.for_suite(suite).run(queries_of(suite, ["q1"])[0], "dear")
    assert answer.error_kind is ErrorKind.FAILED and not answer.ok and answer.cost_usd == 0.01
    scorer = Scorer(suite)
    ids = ["q0", "q1"]
    outcome = scorer.score(ids, Decision(final=np.array([1, 1])))
    assert outcome.accuracy.tolist() == [1.0, 0.0] and outcome.failed.tolist() == [False, True]
    assert outcome.model_cost.tolist() == [0.01, 0.01]  # the failed call was paid for
    assert scorer.scores(ids)[1].tolist() == [0.0, 0.0]  # training labels: a failure is no answer
