"""Does a router pick the right model per query, or only per category? And what does it do on a benchmark
it never saw in fitting?

- sample-level accuracy: share of test queries whose chosen model answers them correctly (the usual accuracy);
- model-level accuracy: share of test queries routed to the best model *for their category* (benchmark and
  source category), the best model being the one with the highest mean test score on that category, ties to
  the cheaper. Our definition: the paper's figure of the same name could not be read.
A router that learned only "which model is best for this kind of query" scores high on model level and no
higher than that model on sample level; the gap to the oracle's sample level is what per-query routing can add.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.suite import Suite
from .harness import Harness, HarnessResult


def _outcome_at(result: HarnessResult, policy: str, seed: int, budget_quantile: float = 1.0):
    """The test outcome of the policy's setting chosen for the budget at this quantile of its budget grid
    (1.0: the largest budget; single-setting policies have one outcome)."""
    run = result.run_of(policy, seed)
    budgets = run.rows["budget_usd"].fillna(-1).to_numpy()
    order = np.argsort(budgets, kind="stable")
    pick = order[int(round(budget_quantile * (len(order) - 1)))]
    return run.outcomes[int(run.rows["knob_index"].iloc[pick])]


def router_accuracy(harness: Harness, result: HarnessResult, policies: list[str],
                    budget_quantiles=(0.5, 1.0)) -> pd.DataFrame:
    suite: Suite = harness.suite
    meta = suite.queries.set_index("query_id")
    names = list(suite.model_names)
    rows = []
    for seed in sorted({r.seed for r in result.runs}):
        test_ids = harness.views(seed)["test"].query_ids
        scores = harness.scorer.scores(test_ids)
        category = (meta.loc[test_ids, "benchmark"] + "/" + meta.loc[test_ids, "category"]).to_numpy()
        best_for = {}
        for cat in np.unique(category):
            mean = scores[category == cat].mean(axis=0)
            best_for[cat] = int(np.flatnonzero(mean == mean.max())[0])  # columns are cheapest first
        target = np.array([best_for[c] for c in category])
        rows.append(dict(seed=seed, policy="oracle: best model per category", model_level=1.0,
                         sample_level=float(scores[np.arange(len(target)), target].mean())))
        rows.append(dict(seed=seed, policy="oracle: best model per query", model_level=np.nan,
                         sample_level=float(scores.max(axis=1).mean())))
        for policy in policies:
            for q in budget_quantiles:
                outcome = _outcome_at(result, policy, seed, q)
                rows.append(dict(seed=seed, policy=policy, budget_quantile=q,
                                 model_level=float(np.mean(outcome.final == target)),
                                 sample_level=float(outcome.accuracy.mean()), cost_usd=float(outcome.cost.mean()),
                                 most_chosen=names[int(np.bincount(outcome.final, minlength=len(names)).argmax())]))
    out = pd.DataFrame(rows)
    out.insert(0, "suite", suite.name)
    return out


def holdout_table(result: HarnessResult, holdout: str, policies: list[str]) -> pd.DataFrame:
    """Test accuracy and cost on the held-out benchmark at each policy's largest budget, and for the hybrid
    the share of those queries its taxonomy path decided (the rest went to the learned router)."""
    rows = []
    for policy in policies:
        for seed in sorted({r.seed for r in result.runs}):
            summary = _outcome_at(result, policy, seed).summary(result.model_names)
            rows.append(dict(suite=result.suite, holdout=holdout, policy=policy, seed=seed,
                             accuracy=summary["accuracy"], cost_usd=summary["cost_usd"],
                             taxonomy_share=summary["taxonomy_share"]))
    return pd.DataFrame(rows)
