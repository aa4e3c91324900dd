"""Descriptive tables computed from outcome tables (no policy involved)."""
from __future__ import annotations

import pandas as pd

from ..data.suite import Suite

FLOAT_FORMAT = "%.10g"  # every CSV in figures/ is written with it, so reruns are byte-identical


def models_table(suite: Suite) -> pd.DataFrame:
    """Per model and benchmark (plus 'all'): accuracy, mean USD/query, queries, and whether costs are estimated.

    Over every query of the suite (no split): a description of the data, not a result of any router."""
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
