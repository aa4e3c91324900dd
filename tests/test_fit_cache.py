"""The fitted-method disk cache that lets make reproduce's notebooks share fits: a hit loads without fitting and
decides exactly as the fresh fit; anything the fit reads (labels, recorded answers, hyperparameters, the code)
changes the key; entries of another code version are removed; live training data is never cached."""
from __future__ import annotations

import numpy as np
import pytest

from emafusion_core import fit_cache
from emafusion_core.evaluation.emafusion import fitted_method
from emafusion_core.features import HashingEncoder
from emafusion_core.method import EMAFusion, OperatingPoint
from suite_support import split_sets


@pytest.fixture(scope="module")
def sets(routerbench):
    suite = routerbench.subset(sorted(routerbench.query_ids)[::4])
    return split_sets(suite, HashingEncoder(128), ("fit", "test")), suite


def _decisions(method, test):
    point = OperatingPoint("hybrid", tau_c=0.6, tau_fam=0.5, cost_weight=0.05, panel=("verifier",))
    view = type(test.view)(test.view.queries, test.view.embeddings)
    decision, _ = method.decide(view, test.executor, point)
    return decision.final, decision.ran


def _count_fits(monkeypatch):
    calls = []
    real = EMAFusion.fit
    monkeypatch.setattr(EMAFusion, "fit", lambda self, training: calls.append(1) or real(self, training))
    return calls


def test_a_hit_loads_without_fitting_and_decides_like_the_fresh_fit(sets, tmp_path, monkeypatch):
    (split, _), cache = sets, fit_cache.FitCache(tmp_path)
    fresh = EMAFusion(encoder=HashingEncoder(128)).fit(split["fit"])
    calls = _count_fits(monkeypatch)
    cold = cache.fitted(EMAFusion(encoder=HashingEncoder(128)), split["fit"])
    warm = cache.fitted(EMAFusion(encoder=HashingEncoder(128)), split["fit"])
    assert calls == [1], "the second call must load the entry, not fit"
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 1
    for method in (cold, warm):
        for a, b in zip(_decisions(fresh, split["test"]), _decisions(method, split["test"])):
            np.testing.assert_array_equal(a, b)


def test_what_the_fit_reads_changes_the_key(sets, tmp_path):
    (split, _), cache = sets, fit_cache.FitCache(tmp_path)
    fit = split["fit"]
    base = cache.key(EMAFusion(), fit)
    scores = fit.scores.copy()
    scores[0, 0] = 1 - scores[0, 0]
    flipped = type(fit)(fit.view, scores, fit.costs, fit.failed, fit.model_names, fit.families, fit.executor,
                        fit.seed, fit.suite, fit.split)
    assert cache.key(EMAFusion(), flipped) != base
    assert cache.key(EMAFusion(k=2), fit) != base
    assert cache.key(EMAFusion(), fit) == base


def test_recorded_answers_are_part_of_the_key(sets, tmp_path):
    (split, suite), cache = sets, fit_cache.FitCache(tmp_path)
    fit = split["fit"]
    base = cache.key(EMAFusion(), fit)
    outcomes = suite.outcomes.copy()
    row = outcomes.index[outcomes["query_id"] == fit.view.query_ids[0]][0]
    outcomes.loc[row, "response"] = "a different recorded reply"
    from emafusion_core.execution import ReplayExecutor

    other = ReplayExecutor(outcomes.drop(columns=["score"]), suite.model_names)
    changed = type(fit)(fit.view, fit.scores, fit.costs, fit.failed, fit.model_names, fit.families, other,
                        fit.seed, fit.suite, fit.split)
    assert cache.key(EMAFusion(), changed) != base


def test_entries_of_another_code_version_are_removed(tmp_path):
    stale = tmp_path / "000000000000-deadbeef"
    stale.mkdir()
    (stale / "manifest.json").write_text("{}")
    current = tmp_path / f"{fit_cache.code_digest()[:12]}-cafe"
    current.mkdir()
    fit_cache.FitCache(tmp_path)
    assert not stale.exists() and current.exists()


def test_live_training_data_is_never_cached(sets, tmp_path, monkeypatch):
    (split, _), cache = sets, fit_cache.FitCache(tmp_path)
    fit = split["fit"]
    live = type(fit)(fit.view, fit.scores, fit.costs, fit.failed, fit.model_names, fit.families, object(),
                     fit.seed, fit.suite, fit.split)
    assert cache.key(EMAFusion(), live) is None


def test_the_harness_uses_the_cache_only_when_the_environment_names_it(sets, tmp_path, monkeypatch):
    from emafusion_core.evaluation.context import FitData

    split, _ = sets
    fit = split["fit"]
    data = FitData(type(fit.view)(fit.view.queries, fit.view.embeddings), fit.scores, fit.costs, fit.failed,
                   fit.model_names, fit.families, fit.executor, fit.seed, fit.suite, fit.split)
    monkeypatch.delenv(fit_cache.ENV, raising=False)
    fitted_method(data)
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv(fit_cache.ENV, str(tmp_path / "cache"))
    data2 = FitData(type(fit.view)(fit.view.queries, fit.view.embeddings), fit.scores, fit.costs, fit.failed,
                    fit.model_names, fit.families, fit.executor, fit.seed, fit.suite, fit.split)
    fitted_method(data2)
    assert len(list((tmp_path / "cache").iterdir())) == 1


def _fresh(training):
    """The training set on a view with an empty memo (fitted_method memoises its fit there)."""
    import dataclasses

    return dataclasses.replace(training, view=dataclasses.replace(training.view, memo={}))


def test_a_router_alone_fit_skips_the_state_verifier_unless_a_full_fit_is_cached(sets, tmp_path, monkeypatch):
    from emafusion_core.evaluation.emafusion import EMAFusionPolicy

    (split, _) = sets
    monkeypatch.setenv(fit_cache.ENV, str(tmp_path / "fits"))
    alone = fitted_method(_fresh(split["fit"]), state_verifier=False)
    assert alone.state_verifier_ is None  # nothing cached yet: the cheap fit, without the cross-fitted judge
    full = fitted_method(_fresh(split["fit"]))
    assert full.state_verifier_ is not None
    point = OperatingPoint("hybrid", tau_c=0.6, tau_fam=0.5, cost_weight=0.05, cascade=False, panel=())
    view = type(split["test"].view)(split["test"].view.queries, split["test"].view.embeddings)
    routed = [m.decide(view, split["test"].executor, point)[0].final for m in (alone, full)]
    np.testing.assert_array_equal(*routed)  # the routers do not depend on it
    calls = _count_fits(monkeypatch)
    served = fitted_method(_fresh(split["fit"]), state_verifier=False)
    assert calls == [] and served.state_verifier_ is not None  # the cached full fit serves, nothing is refitted
    with pytest.raises(ValueError, match="needs the state verifier"):
        EMAFusionPolicy("hybrid", True, state_verifier=False)
