"""Judges read only text, abstain instead of crashing, and the cascade escalates and charges correctly."""
from __future__ import annotations


import numpy as np
import pytest

from emafusion_core.cascade import Cascade, threshold_for
from emafusion_core.execution import Answer, Query
from emafusion_core.judges import (Calibrator, LLMJudge, LearnedVerifier, Panel, PeerAgreementJudge, TableJudge,
                                   Verdict, aggregate, parse_rating)
from emafusion_core.judges.extract import agreement, extract_choice, extract_number
from emafusion_core.llm import LLMClient, Pricer
from emafusion_core.routing import Route


class DictExecutor:
    """Answers from a dict (query_id, model) -> (response, cost); counts runs."""

    def __init__(self, table):
        self.table, self.runs = table, []

    def run(self, query, model):
        self.runs.append((query.query_id, model))
        response, cost = self.table[(query.query_id, model)]
        return Answer(query.query_id, model, response, cost, error=None if response is not None else "failed")


class ConstJudge:
    def __init__(self, name, conf, cost=0.0):
        self.name, self.conf, self.cost = name, conf, cost

    def judge(self, query, answer, paid):
        c = self.conf(answer) if callable(self.conf) else self.conf
        return Verdict(self.name, c, self.cost, 1 if self.cost else 0)


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


def test_peer_judge_reuses_paid_answers_and_hands_back_what_it_bought():
    ex = DictExecutor({("q1", "peer"): ("B", 0.01)})
    judge = PeerAgreementJudge(ex, "peer")
    cand = Answer("q1", "cheap", "B", 0.001)
    v = judge.judge(Q, cand, {})
    assert v.confidence == 1.0 and v.cost_usd == 0.01 and v.calls == 1 and v.new_answers[0].model == "peer"
    v2 = judge.judge(Q, Answer("q1", "cheap", "A", 0.001), {"peer": v.new_answers[0]})
    assert v2.confidence == 0.0 and v2.cost_usd == 0.0 and ex.runs == [("q1", "peer")]


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
    v = LLMJudge(client, model).judge(Q, Answer("q1", "m", "B", 0.0), {})
    assert v.confidence == pytest.approx(0.9) and v.cost_usd > 0 and v.calls == 1
    client, model = _judge_client("I refuse to grade.")
    v = LLMJudge(client, model).judge(Q, Answer("q1", "m", "B", 0.0), {})
    assert v.abstained and v.cost_usd > 0 and v.detail == "unparseable"


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


def _cascade_setup(cheap_conf):
    table = {("q1", "cheap"): ("B", 0.001), ("q1", "mid"): ("B", 0.003), ("q1", "dear"): ("A", 0.01)}
    ex = DictExecutor(table)
    panel = Panel([ConstJudge("j1", cheap_conf, cost=0.0005), ConstJudge("j2", cheap_conf)])
    return ex, panel, Route(("cheap", "mid", "dear"), "test", 0.0002, {"labels": {"task_type": "knowledge_qa"}})


def test_cascade_accepts_confident_cheap_answer():
    ex, panel, route = _cascade_setup(0.9)
    r = Cascade(ex, panel, tau_j=0.7).run(Q, route)
    assert r.models_run == ["cheap"] and r.accepted_by_panel and r.answer.model == "cheap"
    assert r.model_cost_usd == 0.001 and r.judge_cost_usd == 0.0005 and r.router_cost_usd == 0.0002
    assert r.cost_usd == pytest.approx(0.0017)


def test_cascade_escalates_and_last_answers_unconditionally():
    ex, panel, route = _cascade_setup(0.1)
    r = Cascade(ex, panel, tau_j=0.7).run(Q, route)
    assert r.models_run == ["cheap", "mid", "dear"] and not r.accepted_by_panel
    assert r.answer.model == "dear" and r.steps[-1][1] is None  # the last is not judged
    assert r.judge_cost_usd == pytest.approx(0.001)  # two judged steps
    # a shorter cascade keeps the router's last resort: cheap, then straight to dear
    assert Cascade(ex, panel, tau_j=0.7, max_candidates=2).run(Q, route).models_run == ["cheap", "dear"]


def test_cascade_threshold_per_task_type():
    ex, panel, route = _cascade_setup(0.6)
    assert Cascade(ex, panel, tau_j={"knowledge_qa": 0.5, "*": 0.9}).run(Q, route).models_run == ["cheap"]
    assert Cascade(ex, panel, tau_j={"math": 0.5, "*": 0.9}).run(Q, route).models_run == ["cheap", "mid", "dear"]
    with pytest.raises(ValueError, match="default"):
        threshold_for({"math": 0.5}, "coding")


def test_failed_candidate_is_escalated_without_judging():
    table = {("q1", "cheap"): (None, 0.0), ("q1", "dear"): ("A", 0.01)}
    panel = Panel([ConstJudge("j", 1.0)])
    r = Cascade(DictExecutor(table), panel, tau_j=0.5).run(Q, Route(("cheap", "dear"), "t"))
    assert r.answer.model == "dear" and r.steps[0][1] is None


def test_peer_answer_is_not_paid_twice_when_cascade_reaches_the_peer():
    table = {("q1", "cheap"): ("A", 0.001), ("q1", "dear"): ("B", 0.01)}
    ex = DictExecutor(table)
    panel = Panel([PeerAgreementJudge(ex, "dear")])
    r = Cascade(ex, panel, tau_j=0.5).run(Q, Route(("cheap", "dear"), "t"))
    assert r.answer.model == "dear" and ex.runs.count(("q1", "dear")) == 1
    assert r.model_cost_usd == 0.001 and r.judge_cost_usd == 0.01


def test_learned_verifier_reads_text_only_and_learns():
    queries = [f"what is {i} plus {i}" for i in range(200)]
    answers = [("right answer" if i % 2 else "wrong guess") for i in range(200)]
    labels = [i % 2 for i in range(200)]
    v = LearnedVerifier(query_bits=10, answer_bits=8, C=10.0).fit(["m"], queries, {"m": answers},
                                                                   np.array(labels, float)[:, None])
    p = v.predict("m", v.query_features(["what is 3 plus 3"] * 2), ["right answer", "wrong guess"])
    assert p[0] > 0.8 and p[1] < 0.2
    verdict = v.judge(Query("x", "what is 3 plus 3"), Answer("x", "m", "right answer", 0.0), {})
    assert verdict.confidence > 0.8 and verdict.cost_usd == 0.0 and v.calls == 1


def test_table_judge_looks_up_and_fails_loudly_on_a_gap():
    j = TableJudge("t", {("q1", "m"): 0.7})
    assert j.judge(Q, Answer("q1", "m", "B", 0.0), {}).confidence == 0.7
    with pytest.raises(KeyError, match="no precomputed verdict"):
        j.judge(Q, Answer("q1", "other", "B", 0.0), {})


def test_verifier_abstains_on_missing_answer_or_unknown_model():
    v = LearnedVerifier(query_bits=8, answer_bits=8).fit(["m"], ["q a", "q b", "q c", "q d"],
                                                          {"m": ["x", "y", "x", "y"]}, np.array([[1.0], [0.0], [1.0], [0.0]]))
    assert v.judge(Q, Answer("q1", "m", None, 0.0, error="failed"), {}).abstained
    unknown = v.judge(Q, Answer("q1", "other-model", "B", 0.0), {})
    assert unknown.abstained and "other-model" in unknown.detail
