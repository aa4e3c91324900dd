"""Judges read only text, abstain instead of crashing, and the cascade escalates and charges correctly."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from emafusion_core.cascade import State, run_cascade, thresholds
from emafusion_core.execution import Answer, Batch, ErrorKind, Query, ReplayExecutor
from emafusion_core.judges import (Calibrator, LLMJudge, LearnedVerifier, Panel, PeerAgreementJudge, aggregate,
                                   judge_answer, parse_rating)
from emafusion_core.judges.extract import agreement, extract_choice, extract_number
from emafusion_core.llm import LLMClient, Pricer


class DictExecutor:
    """Answers from a dict (query_id, model) -> (response, cost); counts runs."""

    def __init__(self, table):
        self.table, self.runs = table, []

    def run(self, query, model):
        self.runs.append((query.query_id, model))
        response, cost = self.table[(query.query_id, model)]
        return Answer(query.query_id, model, response, cost,
                      error_kind=None if response is not None else ErrorKind.PROVIDER)


class ConstJudge:
    """Confidence `conf` for every answer (or conf(model name)), charging `cost` per verdict."""

    def __init__(self, name, conf, cost=0.0):
        self.name, self.conf, self.cost = name, conf, cost

    def judge_rows(self, state, rows, models):
        state.charge_judge(rows, self.cost, 1 if self.cost else 0)
        return np.array([self.conf(state.model_names[j]) if callable(self.conf) else self.conf for j in models], float)


Q = Query("q1", "Which is a planet?\nA) Sun\nB) Mars\nAnswer:", answer_format="multiple_choice")


@pytest.mark.parametrize("text, letter", [("B", "B"), ("B)", "B"), ("(C) because", "C"), ("The answer is D.", "D"),
                                          ("I do", None), ("", None), ("A\n", "A")])
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter


@pytest.mark.parametrize("text, number", [("so 9 * 2 = 18\n#### 18", "18"), ("makes $1,250.00 a day", "1250"),
                                          ("x = 2.5 then 7.5", "7.5"), ("no digits", None)])
def test_extract_number(text, number):
    assert extract_number(text) == number


def test_agreement_per_format():
    assert agreement("multiple_choice", "B", "B)") == 1.0
    assert agreement("number", "#### 18", "the total is 17") == 0.0
    assert agreement("multiple_choice", "I do", "B") is None
    same = "```python\ndef f(x):\n    return x + 1\n```"
    assert agreement("code", same, same) == 1.0


def run(table, names, cands, panel, tau, task_types=None, queries=(Q,)):
    """The cascade on a batch of queries whose candidates are `cands` (names, cheapest first)."""
    ex = DictExecutor(table)
    state = State(Batch(list(queries)), list(names), ex, record=True)
    idx = np.array([[names.index(c) for c in row] for row in cands])
    d = run_cascade(state, idx, panel, thresholds(tau, len(idx), idx.shape[1], task_types))
    return d, state, ex


NAMES = ["cheap", "mid", "dear"]
TABLE = {("q1", "cheap"): ("B", 0.001), ("q1", "mid"): ("B", 0.003), ("q1", "dear"): ("A", 0.01)}


def test_cascade_accepts_confident_cheap_answer():
    panel = Panel([ConstJudge("j1", 0.9, cost=0.0005), ConstJudge("j2", 0.9)])
    d, state, ex = run(TABLE, NAMES, [NAMES], panel, 0.7)
    assert d.final.tolist() == [0] and d.ran[0].tolist() == [True, False, False]
    assert state.cost[0, 0] == 0.001 and d.judge_cost[0] == 0.0005 and ex.runs == [("q1", "cheap")]


def test_cascade_escalates_and_last_answers_unconditionally():
    panel = Panel([ConstJudge("j1", 0.1, cost=0.0005), ConstJudge("j2", 0.1)])
    d, state, ex = run(TABLE, NAMES, [NAMES], panel, 0.7)
    assert d.final.tolist() == [2] and d.ran[0].all()
    assert d.judge_cost[0] == pytest.approx(0.001)  # two judged steps: the last answer is not judged
    assert {m for _, m, *_ in state.verdicts} == {0, 1}


def test_cascade_threshold_per_task_type_and_per_step():
    panel = Panel([ConstJudge("j", 0.6)])
    assert run(TABLE, NAMES, [NAMES], panel, {"knowledge_qa": 0.5, "*": 0.9}, ["knowledge_qa"])[0].final[0] == 0
    assert run(TABLE, NAMES, [NAMES], panel, {"math": 0.5, "*": 0.9}, ["knowledge_qa"])[0].final[0] == 2
    assert run(TABLE, NAMES, [NAMES], panel, (0.9, 0.5))[0].final[0] == 1  # FrugalGPT: one threshold per stage
    with pytest.raises(ValueError, match="default"):
        thresholds({"math": 0.5}, 1, 3)


def test_failed_candidate_is_escalated_without_judging():
    table = {("q1", "cheap"): (None, 0.0), ("q1", "dear"): ("A", 0.01)}
    d, state, _ = run(table, ["cheap", "dear"], [["cheap", "dear"]], Panel([ConstJudge("j", 1.0)]), 0.5)
    assert d.final[0] == 1 and state.verdicts == []


def test_failed_last_candidate_falls_back_to_the_best_paid_answer():
    table = {("q1", "cheap"): ("B", 0.001), ("q1", "mid"): ("C", 0.003), ("q1", "dear"): (None, 0.01)}
    conf = {"cheap": 0.4, "mid": 0.2}
    d, state, _ = run(table, NAMES, [NAMES], Panel([ConstJudge("j", lambda m: conf[m])]), 0.9)
    assert d.final[0] == 0 and d.fallback[0]  # cheap was trusted more than mid; dear's call failed
    assert d.ran[0].all() and state.failed[0, 2]
    table[("q1", "cheap")] = (None, 0.001)
    table[("q1", "mid")] = (None, 0.003)
    d, _, _ = run(table, NAMES, [NAMES], Panel([ConstJudge("j", 0.2)]), 0.9)
    assert d.final[0] == 2 and not d.fallback[0]  # nothing to fall back on: the failed answer stands


def test_peer_answer_is_not_paid_twice_when_cascade_reaches_the_peer():
    table = {("q1", "cheap"): ("A", 0.001), ("q1", "dear"): ("B", 0.01)}
    d, state, ex = run(table, ["cheap", "dear"], [["cheap", "dear"]], Panel([PeerAgreementJudge("dear")]), 0.5)
    assert d.final[0] == 1 and ex.runs.count(("q1", "dear")) == 1
    assert d.ran[0].tolist() == [True, False]  # dear was bought by the judge, so it is judge cost, once
    assert d.judge_cost[0] == 0.01 and d.judge_calls[0] == 1


def test_peer_judge_agrees_abstains_on_itself_and_on_unreadable_answers():
    table = {("q1", "cheap"): ("B", 0.001), ("q1", "mid"): ("I do not know", 0.002), ("q1", "dear"): ("B)", 0.01)}
    state = State(Batch([Q]), NAMES, DictExecutor(table))
    for j in range(3):
        state.buy(np.array([0]), j)
    judge = PeerAgreementJudge("dear")
    assert judge.judge_rows(state, np.array([0]), np.array([0]))[0] == 1.0
    assert np.isnan(judge.judge_rows(state, np.array([0]), np.array([2]))[0])  # the candidate is the peer
    assert np.isnan(judge.judge_rows(state, np.array([0]), np.array([1]))[0])  # no letter to compare
    assert state.judge_cost[0] == 0.0  # dear was already paid for


def test_batched_cascade_decides_each_query_on_its_own():
    q2 = Query("q2", "Which is a star?\nA) Sun\nB) Mars\nAnswer:", answer_format="multiple_choice")
    table = {**TABLE, ("q2", "cheap"): ("A", 0.001), ("q2", "mid"): ("A", 0.002), ("q2", "dear"): ("A", 0.01)}
    judge = PeerAgreementJudge("mid")
    d, state, _ = run(table, NAMES, [["cheap", "dear"], ["cheap", "dear"]], Panel([judge]), 0.5, queries=(Q, q2))
    assert d.final.tolist() == [0, 0] and d.judge_cost.tolist() == [0.003, 0.002]


@pytest.mark.parametrize("text, rating", [("Good answer. [[8]]", 8.0), ("Rating: 3", 3.0), ("[[10]] ... [[6]]", 8.0),
                                          ("I would say 7/10", 7.0), ("great!", None), ("[[42]]", None)])
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


def _judge_client(reply, cache=None):
    model = "openai/mock-judge"
    return LLMClient({} if cache is None else cache, pricer=Pricer({model: (10.0, 30.0)}), progress=False,
                     endpoints={model: {"mock_response": reply}}), model


def test_llm_judge_rates_and_abstains_on_garbage():
    client, model = _judge_client("Correct and clear. [[9]]")
    v, cost = judge_answer(LLMJudge(client, model), Q, Answer("q1", "m", "B", 0.0))
    assert v.confidence == pytest.approx(0.9) and cost > 0
    client, model = _judge_client("I refuse to grade.")
    v, cost = judge_answer(LLMJudge(client, model), Q, Answer("q1", "m", "B", 0.0))
    assert v.abstained and cost > 0 and v.detail == "unparseable"


def test_aggregation_rules():
    conf = np.array([[0.9, 0.2, np.nan], [np.nan, np.nan, np.nan], [0.6, 0.7, 0.8]])
    np.testing.assert_allclose(aggregate(conf, "mean"), [0.55, np.nan, 0.7])
    np.testing.assert_allclose(aggregate(conf, "majority"), [0.5, np.nan, 1.0])
    np.testing.assert_allclose(aggregate(conf, "unanimity"), [0.2, np.nan, 0.6])
    with pytest.raises(ValueError):
        aggregate(conf, "median")


def test_calibrator_learns_which_judge_to_trust():
    rng = np.random.default_rng(0)
    correct = rng.integers(0, 2, 400)
    good = np.clip(correct * 0.8 + rng.normal(0.1, 0.1, 400), 0, 1)  # informative judge
    noise = rng.uniform(0, 1, 400)  # useless judge
    cal = Calibrator().fit(np.stack([good, noise], 1), correct)
    p = cal.predict(np.array([[0.9, 0.1], [0.1, 0.9]]))
    assert p[0] > 0.8 and p[1] < 0.2


def test_learned_verifier_reads_text_only_and_learns():
    queries = [f"what is {i} plus {i}" for i in range(200)]
    answers = [("right answer" if i % 2 else "wrong guess") for i in range(200)]
    labels = [i % 2 for i in range(200)]
    v = LearnedVerifier(query_bits=10, answer_bits=8, C=10.0).fit(["m"], queries, {"m": answers},
                                                                   np.array(labels, float)[:, None])
    p = v.predict("m", v.query_features(["what is 3 plus 3"] * 2), ["right answer", "wrong guess"])
    assert p[0] > 0.8 and p[1] < 0.2
    verdict, cost = judge_answer(v, Query("x", "what is 3 plus 3"), Answer("x", "m", "right answer", 0.0))
    assert verdict.confidence > 0.8 and cost == 0.0 and v.calls == 1


def test_verifier_abstains_on_missing_answer_or_unknown_model():
    v = LearnedVerifier(query_bits=8, answer_bits=8).fit(["m"], ["q a", "q b", "q c", "q d"],
                                                          {"m": ["x", "y", "x", "y"]}, np.array([[1.0], [0.0], [1.0], [0.0]]))
    assert judge_answer(v, Q, Answer("q1", "m", None, 0.0, error_kind=ErrorKind.PROVIDER))[0].abstained
    assert judge_answer(v, Q, Answer("q1", "other-model", "B", 0.0))[0].abstained


def test_an_answer_without_recorded_text_is_escalated_unjudged_but_is_no_failure():
    """Replay of a source that kept scores but not every response (routellm's MMLU): the judges cannot read
    such an answer, so the cascade escalates past it; as the last candidate it is returned (its recorded score
    counts), never replaced by a fallback."""
    outcomes = pd.DataFrame({"query_id": ["q1"] * 3, "model": NAMES, "response": [None, "B", None],
                             "cost_usd": [0.001, 0.003, 0.01]})
    ex = ReplayExecutor(outcomes, NAMES)
    state = State(Batch([Q]), NAMES, ex, record=True)
    d = run_cascade(state, np.array([[0, 2]]), Panel([ConstJudge("j", 1.0)]), thresholds(0.5, 1, 2))
    assert d.final[0] == 2 and not d.fallback[0] and d.ran[0].tolist() == [True, False, True]
    assert state.verdicts == [] and not state.failed.any()
    assert state.error[0, 0] is ErrorKind.NOT_RECORDED
