"""Taxonomy: labels by rule, classifiers that learn them, Phi from fit quality, routing by tau_c."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.execution import Query
from emafusion_core.features import HashingEncoder
from emafusion_core.taxonomy import (AXES, FastClassifier, RuleLabeller, SuitabilityTable, Taxonomy, TaxonomyError,
                                     TaxonomyRouter, default_rules, default_taxonomy, fuse)

TAX = default_taxonomy()


def test_every_category_is_documented_and_axes_are_the_papers_four():
    assert tuple(TAX.categories) == AXES
    for axis in AXES:
        for cat in TAX.categories[axis]:
            assert len(TAX.descriptions[axis][cat].split()) >= 4


def test_malformed_taxonomy_names_the_key():
    with pytest.raises(TaxonomyError, match="axes.domain"):
        Taxonomy.from_dict({"axes": {"task_type": {"a": "x y", "b": "y z"}, "complexity": {"l": "a", "h": "b"},
                                     "domain": {"only": "one"}, "io_format": {"a": "b", "c": "d"}}})
    with pytest.raises(TaxonomyError, match="missing"):
        Taxonomy.from_dict({"axes": {"task_type": {"a": "x", "b": "y"}}})


def test_rule_with_unknown_category_is_rejected():
    rules = {"rules": [{"benchmark": "x", "labels": {"task_type": "poetry"}}]}
    with pytest.raises(TaxonomyError, match="poetry"):
        RuleLabeller(TAX, rules)


def test_every_shipped_query_gets_a_rule_label(routerbench, routellm):
    labeller = RuleLabeller(TAX, default_rules())
    for suite in (routerbench, routellm):
        labels = labeller.label(suite.queries)
        assert labels.notna().all().all()
    mmlu = routellm.queries[routellm.queries["category"] == "college_physics"].head(1)
    row = labeller.label(mmlu).iloc[0]
    assert (row["task_type"], row["complexity"], row["domain"], row["io_format"]) == \
        ("knowledge_qa", "high", "stem", "multiple_choice")


def test_unknown_benchmark_gets_no_rule_label():
    q = pd.DataFrame({"benchmark": ["my-bench"], "category": [""], "answer_format": ["free_text"]})
    assert RuleLabeller(TAX, default_rules()).label(q).isna().all().all()


def _synthetic(n=120):
    """Two kinds of query: math ('compute ...') and writing ('write a poem ...')."""
    texts, labels = [], []
    for i in range(n):
        if i % 2:
            texts.append(f"compute the sum of {i} and {i + 3} then multiply by {i % 7}")
            labels.append(dict(task_type="math", complexity="medium", domain="stem", io_format="number"))
        else:
            texts.append(f"write a short poem about the {['sea', 'moon', 'city', 'forest'][i % 4]} at night {i}")
            labels.append(dict(task_type="writing", complexity="low", domain="creative", io_format="free_text"))
    return texts, pd.DataFrame(labels)


def test_fast_classifier_learns_labels_and_is_unsure_off_distribution():
    texts, labels = _synthetic()
    clf = FastClassifier(TAX, HashingEncoder(512)).fit(texts, labels)
    probs = clf.predict_proba(["compute the sum of 5 and 9 then multiply by 2", "write a short poem about rain"])
    math_idx, writing_idx = TAX.index("task_type", "math"), TAX.index("task_type", "writing")
    assert probs["task_type"][0, math_idx] > 0.8 and probs["task_type"][1, writing_idx] > 0.8
    off = clf.predict_proba(["quantum chromodynamics lattice gauge"])["task_type"][0]
    assert off.max() < probs["task_type"][0].max()
    for p in probs.values():
        np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_fusion_uses_fast_alone_where_slow_abstained():
    fast = {"task_type": np.array([[1.0, 0.0], [1.0, 0.0]])}
    slow = {"task_type": np.array([[0.0, 1.0], [0.0, 1.0]])}
    fused = fuse(fast, slow, 0.25, slow_ok=np.array([True, False]))["task_type"]
    np.testing.assert_allclose(fused, [[0.75, 0.25], [1.0, 0.0]])
    with pytest.raises(ValueError):
        fuse(fast, slow, 1.5)


def test_suitability_is_smoothed_fit_quality_and_min_over_axes():
    texts, labels = _synthetic(40)
    onehot = TAX.one_hot(labels)
    is_math = (labels["task_type"] == "math").to_numpy()
    # model 0 right on math only, model 1 right on writing only
    scores = np.stack([is_math, ~is_math], axis=1).astype(float)
    table = SuitabilityTable(TAX, ["m0", "m1"], prior_strength=0.0).fit(onehot, scores)
    phi = table.phi(onehot)
    np.testing.assert_allclose(phi[is_math], [[1.0, 0.0]] * int(is_math.sum()))
    smoothed = SuitabilityTable(TAX, ["m0", "m1"], prior_strength=20.0).fit(onehot, scores)
    q = smoothed.quality("task_type")[TAX.index("task_type", "math")]
    # 20 math queries: (20 * 1 + 20 * 0.5) / (20 + 20) = 0.75 for m0; (0 + 10) / 40 = 0.25 for m1
    np.testing.assert_allclose(q, [0.75, 0.25])


def test_suitability_update_moves_only_the_judged_model():
    texts, labels = _synthetic(40)
    onehot = TAX.one_hot(labels)
    table = SuitabilityTable(TAX, ["m0", "m1"], prior_strength=0.0).fit(onehot, np.ones((40, 2)))
    table.update(onehot, 0, np.zeros(40))
    phi = table.phi(onehot)
    np.testing.assert_allclose(phi[:, 0], 0.5)
    np.testing.assert_allclose(phi[:, 1], 1.0)


def test_router_keeps_proficient_models_cheapest_first_and_falls_back():
    texts, labels = _synthetic()
    enc = HashingEncoder(512)
    fast = FastClassifier(TAX, enc).fit(texts, labels)
    is_math = (labels["task_type"] == "math").to_numpy()
    # cheap model is good at math only; dear model is good at both
    scores = np.stack([is_math, np.ones(len(texts), bool)], axis=1).astype(float)
    table = SuitabilityTable(TAX, ["cheap", "dear"], prior_strength=1.0).fit(TAX.one_hot(labels), scores)
    router = TaxonomyRouter(TAX, fast, table, model_costs=[0.001, 0.01], tau_c=0.8, tau_fam=0.5)
    routes = router.route_batch([Query("a", "compute the sum of 2 and 3 then multiply by 4"),
                                 Query("b", "write a short poem about the sea at night")])
    assert routes[0].candidates == ("cheap", "dear") and routes[0].primary == "cheap"
    assert routes[1].candidates == ("dear",) and routes[1].path == "taxonomy"
    strict = TaxonomyRouter(TAX, fast, table, model_costs=[0.001, 0.01], tau_c=1.01)
    fallback = strict.route_batch([Query("c", "write a short poem about the moon at night")])[0]
    assert fallback.path == "taxonomy-fallback" and fallback.candidates == ("dear",)
    assert not fallback.info["familiar"]


def test_cascade_chain_is_cheapest_proficient_models_then_the_most_suitable():
    from emafusion_core.taxonomy import TaxonomyDecision

    router = TaxonomyRouter.__new__(TaxonomyRouter)  # only the chain logic: no classifier needed
    router.model_costs = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    router.order = np.argsort(router.model_costs)
    router.max_candidates = 3
    phi = np.array([[0.8, 0.7, 0.9, 0.95, 0.75], [0.1, 0.2, 0.3, 0.2, 0.1]])
    keep = phi >= 0.7
    d = TaxonomyDecision(keep, phi, np.ones(2), keep.any(axis=1), np.array([0, 2]))
    chains = router.chains(d)
    # row 0: all five proficient -> two cheapest (0, 1) and the most suitable (3); row 1: none -> best alone
    assert chains.tolist() == [[0, 1, 3], [2, -1, -1]]


def test_empty_batch_routes_to_nothing():
    texts, labels = _synthetic(20)
    fast = FastClassifier(TAX, HashingEncoder(64)).fit(texts, labels)
    table = SuitabilityTable(TAX, ["a", "b"]).fit(TAX.one_hot(labels), np.ones((20, 2)))
    assert TaxonomyRouter(TAX, fast, table, [1.0, 2.0]).route_batch([]) == []
