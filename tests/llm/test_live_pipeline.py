"""The LLM-backed parts of the pipeline against the real local model: decomposition, the slow taxonomy
classifier and the LLM judge. SmolLM2-135M is a toy: we assert the pipeline's contract (a result or a
recorded abstention, cost charged, repeat served from cache), not the quality of its answers."""
from __future__ import annotations

import pytest

from emafusion_core.decompose import Decomposer
from emafusion_core.execution import Answer, Query
from emafusion_core.judges import LLMJudge
from emafusion_core.taxonomy import default_taxonomy
from emafusion_core.taxonomy.slow import SlowClassifier
from gateway_support import MODEL

pytestmark = pytest.mark.live


def test_decomposition_with_the_real_model_is_usable_and_cached(proxy, make_client):
    client = make_client(proxy.api_base)
    text = "What is the capital of France, and what is 12 times 12?"
    first = Decomposer(client, MODEL, max_tokens=80).split(text)
    assert first.parts and all(p.strip() for p in first.parts) and first.cost_usd > 0
    assert first.split or first.parts == (text,)  # either a real split, or the request kept whole
    sent = proxy.requests
    again = Decomposer(client, MODEL, max_tokens=80).split(text)
    if first.problem is None:  # a usable reply is served from the cache; a rejected one is asked again
        assert again.parts == first.parts and proxy.requests == sent


def test_slow_classifier_with_the_real_model_labels_or_abstains(proxy, make_client):
    client = make_client(proxy.api_base)
    clf = SlowClassifier(client, MODEL, default_taxonomy(), max_tokens=60)
    probs, ok, cost = clf.predict_proba([Query("q1", "Write a Python function that reverses a string.")])
    assert cost > 0 and ok.shape == (1,)
    for p in probs.values():
        assert p.shape[0] == 1 and abs(p.sum() - 1.0) < 1e-9
    assert clf.abstentions == int((~ok).sum())


def test_llm_judge_with_the_real_model_rates_or_abstains(proxy, make_client):
    client = make_client(proxy.api_base)
    verdict = LLMJudge(client, MODEL, max_tokens=60).judge(Query("q1", "What is 2 + 2?"),
                                                           Answer("q1", "some-model", "4", 0.0), {})
    assert verdict.calls == 1 and verdict.cost_usd > 0
    assert verdict.confidence is None or 0.1 <= verdict.confidence <= 1.0
