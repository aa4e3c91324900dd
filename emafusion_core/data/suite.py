"""A Suite: validated queries, outcomes and models of one set of benchmarks, held in memory.

Constructors take tables, not paths (loading lives in io.py), so tests build suites from a few rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .validation import as_bool, validate_judgments, validate_models, validate_outcomes, validate_queries

_QUERY_DEFAULTS = {"category": "", "answer_format": "free_text", "n_shot": 0, "contaminated": False}


@dataclass(frozen=True, eq=False)
class Suite:
    name: str
    queries: pd.DataFrame
    outcomes: pd.DataFrame
    models: pd.DataFrame
    judgments: pd.DataFrame | None = None
    sources: dict = field(default_factory=dict)  # table -> file it came from, for error messages

    @classmethod
    def from_tables(cls, name: str, queries: pd.DataFrame, outcomes: pd.DataFrame, models: pd.DataFrame,
                    judgments: pd.DataFrame | None = None, sources: dict | None = None) -> "Suite":
        """Validate the tables, fill optional columns with their defaults, and build the suite."""
        sources = dict(sources or {})
        src = lambda table: sources.get(table, f"{name}/{table}")  # noqa: E731
        validate_queries(queries, src("queries"))
        validate_models(models, src("models"))
        validate_outcomes(outcomes, queries, models, src("outcomes"), src("queries"))
        if judgments is not None:
            validate_judgments(judgments, queries, models, src("judgments"))

        q = queries.copy()
        q["query_id"] = q["query_id"].astype(str)
        if "question" not in q.columns:
            q["question"] = q["prompt"]
        q["question"] = q["question"].fillna(q["prompt"])
        contaminated = as_bool(q["contaminated"]) if "contaminated" in q.columns else False
        for column, default in _QUERY_DEFAULTS.items():
            q[column] = q[column].fillna(default) if column in q.columns else default
        q["n_shot"] = q["n_shot"].astype(int)
        q["contaminated"] = contaminated  # parsed strictly: "no" is False (astype(bool) would make it True)
        q["suite"] = name
        q = q.reset_index(drop=True)

        o = outcomes.copy()
        o["query_id"] = o["query_id"].astype(str)
        o["score"] = o["score"].astype(float)
        o["cost_usd"] = o["cost_usd"].astype(float)
        if "cost_source" not in o.columns:
            o["cost_source"] = "recorded"
        if "response" not in o.columns:
            o["response"] = pd.NA
        m = models.copy().reset_index(drop=True)
        return cls(name, q, o.reset_index(drop=True), m, judgments, sources)

    # Model order used everywhere: cheapest first by mean recorded cost (the cascade's order too).
    @cached_property
    def model_names(self) -> list[str]:
        mean_cost = self.outcomes.groupby("model")["cost_usd"].mean()
        return sorted(self.models["model"], key=lambda m: (mean_cost.get(m, np.inf), m))

    @cached_property
    def query_ids(self) -> pd.Index:
        return pd.Index(self.queries["query_id"], name="query_id")

    def matrix(self, column: str) -> pd.DataFrame:
        """A queries x models table of one outcome column, rows in queries order, columns cheapest first."""
        wide = self.outcomes.pivot(index="query_id", columns="model", values=column)
        return wide.reindex(index=self.query_ids, columns=self.model_names)

    @cached_property
    def scores(self) -> pd.DataFrame:
        return self.matrix("score")

    @cached_property
    def costs(self) -> pd.DataFrame:
        return self.matrix("cost_usd")

    @cached_property
    def failed(self) -> pd.DataFrame:
        """Queries x models: True where the outcome records a failed call (error_kind set, score empty)."""
        if "error_kind" not in self.outcomes.columns:
            return pd.DataFrame(False, index=self.query_ids, columns=self.model_names)
        return self.matrix("error_kind").notna()

    def subset(self, query_ids) -> "Suite":
        """The same suite restricted to some queries (e.g. one benchmark)."""
        keep = set(map(str, query_ids))
        q = self.queries[self.queries["query_id"].isin(keep)]
        o = self.outcomes[self.outcomes["query_id"].isin(keep)]
        j = None if self.judgments is None else self.judgments[self.judgments["query_id"].isin(keep)]
        return Suite(self.name, q.reset_index(drop=True), o.reset_index(drop=True), self.models, j, self.sources)

    def __repr__(self) -> str:
        return (f"Suite({self.name!r}: {len(self.queries)} queries, {len(self.models)} models, "
                f"benchmarks {sorted(self.queries['benchmark'].unique())})")
