"""MT-Bench's recorded GPT-4 verdicts replay through the same LLM judge a live run would use: in replay
mode, from the cache, with the recorded judges' cost charged, and never by reading the score column."""
from __future__ import annotations

import numpy as np

from emafusion_core.evaluation import ReplayExecutor, queries_of
from emafusion_core.judges import LLMJudge, judge_answer, seed_recorded_verdicts
from emafusion_core.llm import LLMClient, Pricer, ReplayMiss


def test_recorded_verdicts_replay_through_the_llm_judge(routellm):
    mt = routellm.subset(routellm.queries.loc[routellm.queries["benchmark"] == "mt-bench", "query_id"])
    store = {}
    client = LLMClient(store, mode="replay", pricer=Pricer({"gpt-4": (10.0, 30.0)}), progress=False)
    judge = LLMJudge(client, "gpt-4")
    written = seed_recorded_verdicts(judge, client.cache, mt.queries, mt.outcomes, mt.judgments, 10.0, 30.0)
    assert written == 160  # 80 questions x 2 models
    ex = ReplayExecutor.for_suite(mt)
    confidences, scores, costs = [], [], []
    for q in queries_of(mt, mt.query_ids):
        for model in mt.model_names:
            v, cost = judge_answer(judge, q, ex.run(q, model))
            confidences.append(v.confidence)
            costs.append(cost)
            scores.append(float(mt.scores.loc[q.query_id, model]))
    # the judge parsed the recorded ratings itself: its confidence equals the source's rescaled score
    np.testing.assert_allclose(confidences, scores, atol=1e-9)
    assert min(costs) > 0.005  # a GPT-4 judge call on a two-turn answer costs cents, and is charged


def test_an_answer_without_recorded_verdict_is_a_replay_miss_not_a_guess(routellm):
    client = LLMClient({}, mode="replay", pricer=Pricer({"gpt-4": (10.0, 30.0)}), progress=False)
    judge = LLMJudge(client, "gpt-4")
    q = queries_of(routellm, routellm.query_ids[:1])[0]
    from emafusion_core.execution import Answer

    v, _ = judge_answer(judge, q, Answer(q.query_id, "m", "an answer nobody judged", 0.0))
    assert v.abstained and v.detail == ReplayMiss.kind
