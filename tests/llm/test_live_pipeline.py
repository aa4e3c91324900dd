"""The LLM-backed parts of the pipeline against the real local model: decomposition, the slow taxonomy
classifier and the LLM judge. SmolLM2-135M is a toy: we assert the pipeline's contract (a result or a
recorded abstention, cost charged, repeat served from cache), not the quality of its answers."""
from __future__ import annotations

import pytest

from emafusion_core.decompose import Decomposer
from emafusion_core.llm.json_reply import parse_json_object
from emafusion_core.execution import Answer, Query
from emafusion_core.judges import LLMJudge, judge_answer, parse_rating
from emafusion_core.taxonomy import default_taxonomy
from emafusion_core.taxonomy.slow import SlowClassifier
from gateway_support import MODEL

pytestmark = pytest.mark.live


def test_decomposition_with_the_real_model_follows_its_reply(proxy, make_client):
    """The parts are exactly what SmolLM2's reply lists when it parses (then cached, and served from the cache),
    else the request whole with the reply marked bad: checked against the reply itself, read from the cache."""
    client = make_client(proxy.api_base)
    text = "What is the capital of France, and what is 12 times 12?"
    first = Decomposer(client, MODEL, max_tokens=80).split(text)
    assert first.cost_usd > 0
    records = [client.cache.record(k) for k in list(client.cache.store)]
    assert len(records) == 1
    obj = parse_json_object(records[0].get("text"))
    listed = obj.get("subproblems") if obj else None
    usable = isinstance(listed, list) and 0 < len(listed) <= 5 and all(isinstance(p, str) and p.strip() for p in listed)
    if usable:
        assert first.parts == tuple(p.strip() for p in listed) and first.split == (len(listed) > 1)
        assert records[0]["status"] == "ok" and first.problem is None
        sent = proxy.requests
        assert Decomposer(client, MODEL, max_tokens=80).split(text) == first and proxy.requests == sent
    else:
        assert first.parts == (text,) and not first.split and first.problem == "unparseable"
        assert records[0]["status"] == "bad"


def test_slow_classifier_with_the_real_model_labels_or_abstains(proxy, make_client):
    client = make_client(proxy.api_base)
    clf = SlowClassifier(client, MODEL, default_taxonomy(), max_tokens=60)
    probs, ok, cost = clf.predict_proba([Query("q1", "Write a Python function that reverses a string.")])
    assert cost > 0 and ok.shape == (1,)
    for p in probs.values():
        assert p.shape[0] == 1 and abs(p.sum() - 1.0) < 1e-9
    assert clf.abstentions == int((~ok).sum())


def test_llm_judge_with_the_real_model_reads_the_rating_it_was_given(proxy, make_client):
    """Whatever SmolLM2 replies, the verdict is what the reply says: its rating / 10 when the reply holds one
    (and the reply stays cached), else an abstention whose reply is marked bad so it is asked again."""
    client = make_client(proxy.api_base)
    judge = LLMJudge(client, MODEL, max_tokens=60)
    query, answer = Query("q1", "What is 2 + 2?"), Answer("q1", "some-model", "4", 0.0)
    verdict, cost = judge_answer(judge, query, answer)
    assert cost > 0 and proxy.requests >= 1
    record = client.cache.record(client.key(judge.request(query, "4")))
    rating = parse_rating(record.get("text"))
    if rating is None:
        assert verdict.abstained and verdict.detail == "unparseable" and record["status"] == "bad"
    else:
        assert verdict.confidence == pytest.approx(rating / 10) and record["status"] == "ok"
        sent = proxy.requests
        assert judge_answer(judge, query, answer)[0] == verdict and proxy.requests == sent  # from the cache
