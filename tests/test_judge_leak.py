"""A judge that reads a score column is a bug: permuting the scores of the outcome table must leave every
judge's output unchanged (evaluation.md, Judges)."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core.cascade import State
from emafusion_core.data import Suite
from emafusion_core.evaluation import ReplayExecutor, queries_of
from emafusion_core.execution import Batch
from emafusion_core.judges import LLMJudge, LearnedVerifier, PeerAgreementJudge
from emafusion_core.llm import LLMClient, Pricer


def _permuted(suite: Suite, seed: int = 0) -> Suite:
    outcomes = suite.outcomes.copy()
    outcomes["score"] = np.random.default_rng(seed).permutation(outcomes["score"].to_numpy())
    return Suite.from_tables(suite.name, suite.queries, outcomes, suite.models)


@pytest.fixture(scope="module")
def pair(routerbench):
    small = routerbench.subset(routerbench.query_ids[::25])  # 127 queries, all three benchmarks
    return small, _permuted(small)


def _verdicts(judge, suite: Suite):
    """The judge on two models' answers to every query, as the cascade calls it: (confidences, judge cost, calls)."""
    state = State(Batch(queries_of(suite, suite.query_ids)), list(suite.model_names), ReplayExecutor.for_suite(suite))
    rows = np.arange(len(state))
    out = []
    for model in ("mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106"):
        j = state.model_index(model)
        state.buy(rows, j)
        out.append(judge.judge_rows(state, rows, np.full(len(rows), j)))
    return np.concatenate(out), state.judge_cost.copy(), state.judge_calls.copy()


def _same(a, b) -> bool:
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def test_peer_agreement_judge_ignores_scores(pair):
    original, permuted = pair
    judge = PeerAgreementJudge("zero-one-ai/Yi-34B-Chat")
    a, b = _verdicts(judge, original), _verdicts(judge, permuted)
    assert _same(a, b) and np.isfinite(a[0]).any() and a[1].sum() > 0


def test_fitted_verifier_ignores_scores_at_inference(pair, routerbench):
    original, permuted = pair
    fit = routerbench.subset(routerbench.query_ids[1::25])
    ex = ReplayExecutor.for_suite(fit)
    texts = fit.queries["question"].tolist()
    answers = {m: [ex.run(q, m).response or "" for q in queries_of(fit, fit.query_ids)] for m in fit.model_names}
    verifier = LearnedVerifier(query_bits=10, answer_bits=10).fit(fit.model_names, texts, answers,
                                                                  fit.scores.to_numpy())
    a, b = _verdicts(verifier, original), _verdicts(verifier, permuted)
    assert _same(a, b) and np.isfinite(a[0]).all()


def test_llm_judge_ignores_scores(pair):
    original, permuted = pair
    model = "openai/mock-judge"

    def make():
        return LLMJudge(LLMClient({}, pricer=Pricer({model: (1.0, 1.0)}), progress=False,
                                  endpoints={model: {"mock_response": "Fine. [[7]]"}}), model)

    a, b = _verdicts(make(), original), _verdicts(make(), permuted)
    assert _same(a, b) and a[1].sum() > 0


def test_state_verifier_ignores_scores_at_inference(pair, routerbench):
    """The state verifier (fitted on another subset's labels) reads the answers bought and the predictions only."""
    from emafusion_core.judges.state_verifier import StateVerifier

    original, permuted = pair
    fit = routerbench.subset(routerbench.query_ids[1::25])
    ex = ReplayExecutor.for_suite(fit)
    queries = queries_of(fit, fit.query_ids)
    texts = np.array([[ex.run(q, m).response or None for m in fit.model_names] for q in queries], object)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(queries), 8))
    core = StateVerifier(n_reduced=4, max_iter=20).fit(
        fit.model_names, emb, [q.answer_format for q in queries], texts, rng.random(texts.shape),
        fit.scores.to_numpy(), fit.costs.to_numpy().mean(0))

    def verdicts(suite):
        qs = queries_of(suite, suite.query_ids)
        pred = np.random.default_rng(1).random((len(qs), len(suite.model_names)))
        state = State(Batch(qs, np.random.default_rng(2).normal(size=(len(qs), 8))), list(suite.model_names),
                      ReplayExecutor.for_suite(suite), predicted=pred)
        rows = np.arange(len(state))
        out = []
        for model in ("mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106"):  # the second sees the first's answer
            j = state.model_index(model)
            state.buy(rows, j)
            out.append(core.judge(("zero-one-ai/Yi-34B-Chat",)).judge_rows(state, rows, np.full(len(rows), j)))
        return np.concatenate(out), state.judge_cost.copy(), state.judge_calls.copy()

    a, b = verdicts(original), verdicts(permuted)
    assert _same(a, b) and np.isfinite(a[0]).any() and a[1].sum() > 0


def test_chains_by_category_ignore_scores_at_decision_time(pair, routerbench):
    """A fitted EMAFusion deciding with per-category chains (tau_j per category, direct, fewer cheap models) and
    the state verifier: permuting the scores of the suite it answers changes nothing it does."""
    from emafusion_core.features import HashingEncoder
    from emafusion_core.method import EMAFusion, OperatingPoint
    from suite_support import split_sets

    original, permuted = pair
    enc = HashingEncoder(64)
    fit = split_sets(routerbench.subset(sorted(routerbench.query_ids)[1::6]), enc, ("fit",))["fit"]
    method = EMAFusion(encoder=enc).fit(fit)
    probe = Batch(queries_of(original, original.query_ids))
    cats = sorted(set(method._categories(probe, "task_type/complexity")))
    point = OperatingPoint("hybrid", tau_c=0.5, tau_fam=0.5, cost_weight=0.05, panel=("state-verifier+peer:"
                           f"{method.peers_[0]}",), categories="task_type/complexity",
                           tau_j=(("*", 0.6),) + ((cats[0], 0.9),), direct=tuple(cats[1:2]),
                           k_by=tuple((c, 2) for c in cats[2:3]))

    def run(suite):
        d, _ = method.decide(Batch(queries_of(suite, suite.query_ids)), ReplayExecutor.for_suite(suite), point)
        return d.final, d.ran, d.judge_calls, d.judge_cost

    a, b = run(original), run(permuted)
    assert _same(a, b) and a[2].sum() > 0
