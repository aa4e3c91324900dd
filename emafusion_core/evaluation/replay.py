"""Replay: the offline executor, the harness's scorer, and the vectorised record of what a policy did.

The split of knowledge is the point of this module. A ReplayExecutor holds responses and costs only (it never
receives the score column), so a policy that asks it for answers cannot learn a score by any route. The Scorer
is the only object that holds scores; the harness owns it and policies never get one.

The fast path: a policy over a batch of queries returns a Decision (model indices and run masks, no scores);
the Scorer turns it into per-query accuracy and cost with a few numpy gathers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.suite import Suite
from ..execution import Answer, Query

_ANSWER_COLUMNS = ("query_id", "model", "response", "cost_usd", "input_tokens", "output_tokens")


def queries_of(suite: Suite, query_ids) -> list[Query]:
    """The Query objects (text and metadata, no score) of some queries, in the given order."""
    table = suite.queries.set_index("query_id").loc[list(map(str, query_ids))]
    # A suite may bring its own taxonomy labels (columns named after the axes): they travel as metadata.
    label_columns = [c for c in ("task_type", "complexity", "domain", "io_format") if c in table.columns]
    return [Query(query_id=qid, prompt=row.prompt, question=row.question, benchmark=row.benchmark,
                  category=row.category, answer_format=row.answer_format,
                  metadata={c: getattr(row, c) for c in label_columns})
            for qid, row in zip(table.index, table.itertuples(index=False))]


class ReplayExecutor:
    """Executor over recorded outcomes: run(query, model) returns the recorded response and cost, O(1).

    Built from the outcome table minus its score column; the suite itself is not kept."""

    def __init__(self, suite: Suite):
        table = suite.outcomes[[c for c in _ANSWER_COLUMNS if c in suite.outcomes.columns]]
        self._records: dict[tuple[str, str], tuple] = {}
        for row in table.itertuples(index=False):
            rec = row._asdict()
            response = rec.get("response")
            self._records[(rec["query_id"], rec["model"])] = (
                None if response is None or pd.isna(response) else str(response),
                float(rec["cost_usd"]),
                _int_or_none(rec.get("input_tokens")),
                _int_or_none(rec.get("output_tokens")),
            )
        self.calls = 0

    def run(self, query: Query, model: str) -> Answer:
        key = (query.query_id, model)
        if key not in self._records:
            raise KeyError(f"no recorded outcome for model {model!r} on query {query.query_id!r}")
        response, cost, tin, tout = self._records[key]
        self.calls += 1
        return Answer(query_id=query.query_id, model=model, response=response, cost_usd=cost,
                      input_tokens=tin, output_tokens=tout, cached=True,
                      error=None if response is not None else "no recorded response")


def _int_or_none(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


@dataclass
class Decision:
    """What a policy did on each query of a batch, as arrays over suite.model_names (cheapest first).

    final: (n,) index of the model whose answer is returned. ran: (n, m) bool of models run and charged
    (None: only the final one). judge_calls / judge_cost / router_cost: (n,) per query (None: zero).
    taxonomy_path: (n,) bool, for routers with two paths: True where the taxonomy router decided."""

    final: np.ndarray
    ran: np.ndarray | None = None
    judge_calls: np.ndarray | None = None
    judge_cost: np.ndarray | None = None
    router_cost: np.ndarray | None = None
    taxonomy_path: np.ndarray | None = None

    def ran_mask(self, n_models: int) -> np.ndarray:
        if self.ran is not None:
            return self.ran
        mask = np.zeros((len(self.final), n_models), bool)
        mask[np.arange(len(self.final)), self.final] = True
        return mask


@dataclass
class Outcome:
    """Per-query results of one Decision: what the harness aggregates, bootstraps and tabulates."""

    accuracy: np.ndarray
    model_cost: np.ndarray
    judge_cost: np.ndarray
    router_cost: np.ndarray
    judge_calls: np.ndarray
    calls: np.ndarray  # (n, m) bool: models run
    final: np.ndarray  # (n,) model answered
    taxonomy_path: np.ndarray | None = None  # (n,) bool where a two-path router took the taxonomy path

    @property
    def cost(self) -> np.ndarray:
        return self.model_cost + self.judge_cost + self.router_cost

    def summary(self, model_names) -> dict:
        """Mean accuracy and USD/query with the breakdown, judge calls, and per model: `share:` of final answers
        and `calls:` runs per query (they differ for cascades, which pay for models whose answer they drop)."""
        n = len(self.accuracy)
        cost = float(self.cost.mean())
        share = np.bincount(self.final, minlength=len(model_names)) / max(n, 1)
        out = dict(accuracy=float(self.accuracy.mean()), cost_usd=cost, model_cost=float(self.model_cost.mean()),
                   judge_cost=float(self.judge_cost.mean()), router_cost=float(self.router_cost.mean()),
                   judge_calls=float(self.judge_calls.mean()), models_run=float(self.calls.sum(1).mean()),
                   judge_share_of_cost=float(self.judge_cost.mean() / cost) if cost > 0 else 0.0)
        out.update({f"share:{m}": float(s) for m, s in zip(model_names, share)})
        out.update({f"calls:{m}": float(c) for m, c in zip(model_names, self.calls.mean(axis=0))})
        out["taxonomy_share"] = float(self.taxonomy_path.mean()) if self.taxonomy_path is not None else float("nan")
        return out


class Scorer:
    """The only reader of the score column: turns Decisions into per-query accuracy and cost.

    Holds the score and cost matrices of the whole suite; rows are looked up by query id."""

    def __init__(self, suite: Suite):
        self.model_names = list(suite.model_names)
        self._row = pd.Series(np.arange(len(suite.query_ids)), index=suite.query_ids)
        self._scores = suite.scores.to_numpy(float)
        self._costs = suite.costs.to_numpy(float)

    def rows(self, query_ids) -> np.ndarray:
        return self._row.loc[list(query_ids)].to_numpy()

    def scores(self, query_ids) -> np.ndarray:
        """(n, m) scores: for training labels on the fit split and for the oracle, never for a policy's decide."""
        return self._scores[self.rows(query_ids)]

    def costs(self, query_ids) -> np.ndarray:
        return self._costs[self.rows(query_ids)]

    def score(self, query_ids, decision: Decision, rows: np.ndarray | None = None) -> Outcome:
        """Per-query outcome of a decision: accuracy of the final answer, cost of every model run plus judges."""
        rows = self.rows(query_ids) if rows is None else rows
        n, m = len(rows), len(self.model_names)
        final = np.asarray(decision.final, dtype=int)
        if final.shape != (n,):
            raise ValueError(f"decision covers {final.shape} queries, expected {n}")
        ran = decision.ran_mask(m)
        costs = self._costs[rows]
        zero = np.zeros(n)
        return Outcome(accuracy=self._scores[rows, final], model_cost=(costs * ran).sum(1),
                       judge_cost=zero if decision.judge_cost is None else np.asarray(decision.judge_cost, float),
                       router_cost=zero if decision.router_cost is None else np.asarray(decision.router_cost, float),
                       judge_calls=zero if decision.judge_calls is None else np.asarray(decision.judge_calls, float),
                       calls=ran, final=final,
                       taxonomy_path=None if decision.taxonomy_path is None else np.asarray(decision.taxonomy_path, bool))
