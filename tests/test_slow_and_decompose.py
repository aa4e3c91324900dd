"""LLM-backed taxonomy labels and decomposition: parsed when sane, an abstention when not, always charged.

Replies come from litellm's mock_response through the real gateway (no server needed here; the live
path against the local model is in tests/llm)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emafusion_core.decompose import Decomposer, join_answers
from emafusion_core.execution import Query
from emafusion_core.llm import LLMClient, Pricer
from emafusion_core.taxonomy import default_taxonomy
from emafusion_core.taxonomy.slow import SlowClassifier, parse_labels

TAX = default_taxonomy()
MODEL = "openai/mock-labeller"


def client_replying(text: str, cache=None) -> LLMClient:
    return LLMClient({} if cache is None else cache, pricer=Pricer({MODEL: (1.0, 2.0)}), progress=False,
                     endpoints={MODEL: {"mock_response": text}})


GOOD = json.dumps({"task_type": "math", "complexity": "High", "domain": "stem", "io_format": "number"})


@pytest.mark.parametrize("reply, expected", [
    (GOOD, {"task_type": "math", "complexity": "high", "domain": "stem", "io_format": "number"}),
    ("Sure! ```json\n" + GOOD + "\n```", {"task_type": "math", "complexity": "high", "domain": "stem",
                                          "io_format": "number"}),
    ("I think it is maths.", None),
    ('{"task_type": "math"}', None),
    ('{"task_type": "poetry", "complexity": "low", "domain": "stem", "io_format": "number"}', None),
    ("", None),
])
def test_parse_labels(reply, expected):
    assert parse_labels(reply, TAX) == expected


def test_slow_classifier_labels_and_charges():
    clf = SlowClassifier(client_replying(GOOD), MODEL, TAX)
    probs, ok, cost = clf.predict_proba([Query("q1", "What is 17 * 23?")])
    assert ok.tolist() == [True] and cost > 0
    assert probs["task_type"][0, TAX.index("task_type", "math")] == 1.0


def test_garbage_reply_is_an_abstention_charged_and_not_served_again():
    cache = {}
    client = client_replying("no idea, sorry", cache)
    clf = SlowClassifier(client, MODEL, TAX)
    probs, ok, cost = clf.predict_proba([Query("q1", "What is 17 * 23?")])
    assert ok.tolist() == [False] and cost > 0 and clf.abstentions == 1
    np.testing.assert_allclose(probs["domain"][0], 1.0 / len(TAX.categories["domain"]))
    # the bad reply is marked: a replay-mode client finds no usable entry for it
    replay = LLMClient(cache, mode="replay", pricer=Pricer({MODEL: (1.0, 2.0)}), progress=False)
    _, ok_again, _ = SlowClassifier(replay, MODEL, TAX).predict_proba([Query("q1", "What is 17 * 23?")])
    assert ok_again.tolist() == [False]


def test_decomposer_splits_and_joins():
    reply = json.dumps({"subproblems": ["What is the capital of France?", "What is 2 + 2?"]})
    d = Decomposer(client_replying(reply), MODEL).split("Capital of France, and 2 + 2?")
    assert d.split and d.parts == ("What is the capital of France?", "What is 2 + 2?") and d.cost_usd > 0
    joined = join_answers(d.parts, ["Paris", "4"])
    assert "Paris" in joined and "4" in joined and "capital of France" in joined


@pytest.mark.parametrize("garbage", ["nonsense", '{"subproblems": []}', '{"subproblems": "one"}',
                                     '{"subproblems": ["a", "b", "c", "d", "e", "f"]}'])
def test_decomposer_keeps_request_whole_on_garbage(garbage):
    d = Decomposer(client_replying(garbage), MODEL).split("Explain photosynthesis.")
    assert d.parts == ("Explain photosynthesis.",) and not d.split and d.cost_usd > 0


def test_single_part_is_answered_as_is():
    assert join_answers(("q",), ["the answer"]) == "the answer"


def test_label_columns_for_a_users_suite_leave_abstentions_empty():
    import pandas as pd

    from emafusion_core.taxonomy.slow import label_columns

    queries = pd.DataFrame({"query_id": ["a"], "prompt": ["What is 17 * 23?"]})
    labelled = label_columns(SlowClassifier(client_replying(GOOD), MODEL, TAX), queries)
    assert labelled.iloc[0].to_dict() == {"task_type": "math", "complexity": "high", "domain": "stem",
                                          "io_format": "number"}
    empty = label_columns(SlowClassifier(client_replying("no idea"), MODEL, TAX), queries)
    assert empty.isna().all().all()
