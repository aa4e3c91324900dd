"""A judge that reads a score column is a bug: permuting the scores of the outcome table must leave every
judge's output unchanged (evaluation.md, Judges)."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core.data import Suite
from emafusion_core.evaluation import ReplayExecutor, queries_of
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


def _verdicts(judge_for, suite: Suite):
    ex = ReplayExecutor(suite)
    queries = queries_of(suite, suite.query_ids)
    judge = judge_for(ex)
    out = []
    for q in queries:
        for model in ("mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106"):
            v = judge.judge(q, ex.run(q, model), {})
            out.append((v.confidence, v.cost_usd, v.calls))
    return out


def test_peer_agreement_judge_ignores_scores(pair):
    original, permuted = pair
    make = lambda ex: PeerAgreementJudge(ex, "zero-one-ai/Yi-34B-Chat")  # noqa: E731
    a, b = _verdicts(make, original), _verdicts(make, permuted)
    assert a == b and any(c is not None for c, _, _ in a)


def test_fitted_verifier_ignores_scores_at_inference(pair, routerbench):
    original, permuted = pair
    fit = routerbench.subset(routerbench.query_ids[1::25])
    ex = ReplayExecutor(fit)
    texts = fit.queries["question"].tolist()
    answers = {m: [ex.run(q, m).response or "" for q in queries_of(fit, fit.query_ids)] for m in fit.model_names}
    verifier = LearnedVerifier(query_bits=10, answer_bits=10).fit(fit.model_names, texts, answers,
                                                                  fit.scores.to_numpy())
    assert _verdicts(lambda ex: verifier, original) == _verdicts(lambda ex: verifier, permuted)


def test_llm_judge_ignores_scores(pair):
    original, permuted = pair
    model = "openai/mock-judge"

    def make(ex):
        return LLMJudge(LLMClient({}, pricer=Pricer({model: (1.0, 1.0)}), progress=False,
                                  endpoints={model: {"mock_response": "Fine. [[7]]"}}), model)

    assert _verdicts(make, original) == _verdicts(make, permuted)
