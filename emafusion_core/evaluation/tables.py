"""Descriptive tables computed from outcome tables (no policy involved)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data.suite import Suite

FLOAT_FORMAT = "%.10g"  # every CSV in figures/ is written with it, so reruns are byte-identical


def models_table(suite: Suite, include_extra: bool = False, data_dir=None) -> pd.DataFrame:
    """Per model and benchmark (plus 'all'): accuracy, mean USD/query, queries, and whether costs are estimated.

    Over every query of the suite (no split): a description of the data, not a result of any router. The table
    holds this suite only; include_extra=True adds RouterBench's prompt-less 0-shot rows (suite
    'routerbench_extra', `extra_models_table`) after it, and only when the suite is routerbench."""
    table = _models_table(suite)
    if include_extra and suite.name == "routerbench":
        from ..data.io import default_data_dir, read_table

        base = default_data_dir() if data_dir is None else Path(data_dir)
        extra = extra_models_table(read_table(base / "routerbench_extra" / "scores.parquet"))
        table = pd.concat([table, extra], ignore_index=True)
    return table


def _models_table(suite: Suite) -> pd.DataFrame:
    df = suite.outcomes.merge(suite.queries[["query_id", "benchmark"]], on="query_id")
    both = pd.concat([df, df.assign(benchmark="all")], ignore_index=True)
    table = (both.groupby(["benchmark", "model"], sort=False)
             .agg(accuracy=("score", "mean"), usd_per_query=("cost_usd", "mean"), queries=("query_id", "nunique"),
                  cost_estimated=("cost_source", lambda s: bool((s == "estimated").any())))
             .reset_index())
    table.insert(0, "suite", suite.name)
    order = {m: i for i, m in enumerate(suite.model_names)}
    table["_m"] = table["model"].map(order)
    table["_b"] = (table["benchmark"] == "all").astype(int)
    return table.sort_values(["_b", "benchmark", "_m"]).drop(columns=["_m", "_b"]).reset_index(drop=True)


def extra_models_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The same table for RouterBench's supplementary 0-shot rows (scores and costs, no prompts)."""
    table = (scores.groupby(["benchmark", "model"])
             .agg(accuracy=("score", "mean"), usd_per_query=("cost_usd", "mean"), queries=("sample_id", "nunique"))
             .reset_index())
    table.insert(0, "suite", "routerbench_extra")
    table["cost_estimated"] = False
    return table


def winners_table(suite: Suite, by: str = "benchmark") -> pd.DataFrame:
    """Do models specialise? Per task (benchmark, or `by`="category" for subjects): the best single model with its
    accuracy and USD/query, the runner-up's gap, the cheapest model within 1 pp of the best, and the per-query
    oracle's accuracy (some model right). Over every query (no split): a description of the data.

    A suite where one model wins every task leaves a router only cost to save; one where winners differ by task
    is where routing can add accuracy over the best single model."""
    scores = suite.scores.fillna(0.0).where(~suite.failed, 0.0)
    costs = suite.costs
    key = suite.queries.set_index("query_id").loc[scores.index, by]
    rows = []
    groups = [(task, key.index[key == task]) for task in sorted(key.unique())] + [("all", key.index)]
    for task, ids in groups:
        acc, usd = scores.loc[ids].mean(), costs.loc[ids].mean()
        ranked = acc.sort_values(ascending=False, kind="stable")
        near = acc[acc >= ranked.iloc[0] - 0.01]
        cheap = usd[near.index].idxmin()
        rows.append(dict(suite=suite.name, task=task, queries=len(ids), best_model=ranked.index[0],
                         best_accuracy=float(ranked.iloc[0]), best_usd_per_query=float(usd[ranked.index[0]]),
                         runner_up=ranked.index[1] if len(ranked) > 1 else "",
                         gap_to_runner_up=float(ranked.iloc[0] - ranked.iloc[1]) if len(ranked) > 1 else float("nan"),
                         cheapest_within_1pp=cheap, cheapest_within_1pp_usd=float(usd[cheap]),
                         oracle_accuracy=float((scores.loc[ids] >= 0.5).any(axis=1).mean())))
    return pd.DataFrame(rows)
