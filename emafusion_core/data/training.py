"""A TrainingSet: the labelled queries a method is fitted (or calibrated) on, as arrays, built from a suite and
split ids. No harness is needed to fit: `training_set(suite, split_ids(...), embeddings)`.

The queries and the replay executor carry no score; `scores`, `costs` and `failed` are the labels, which is
what fitting and calibration legitimately read.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..execution import Batch, Query, ReplayExecutor
from .suite import Suite

LABEL_COLUMNS = ("task_type", "complexity", "domain", "io_format")


def queries_of(suite: Suite, query_ids) -> list[Query]:
    """The Query objects (text and metadata, no score) of some queries, in the given order."""
    table = suite.queries.set_index("query_id").loc[list(map(str, query_ids))]
    # A suite may bring its own taxonomy labels (columns named after the axes): they travel as metadata.
    label_columns = [c for c in LABEL_COLUMNS if c in table.columns]
    return [Query(query_id=qid, prompt=row.prompt, question=row.question, benchmark=row.benchmark,
                  category=row.category, answer_format=row.answer_format,
                  metadata={c: getattr(row, c) for c in label_columns})
            for qid, row in zip(table.index, table.itertuples(index=False))]


@dataclass(eq=False)
class TrainingSet:
    """view: the queries as a Batch (with `executor` and `model_names` when it is a SplitView); scores, costs,
    failed: (n, m) labels over model_names (cheapest first)."""

    view: Batch
    scores: np.ndarray
    costs: np.ndarray
    failed: np.ndarray | None = None
    model_names: list[str] = field(default_factory=list)
    families: dict = field(default_factory=dict)
    executor: object = None
    seed: int = 0
    suite: str = ""  # suite and split name: seeds of anything random in fitting (e.g. a validation share)
    split: str = "fit"

    def __post_init__(self):
        self.suite = self.suite or getattr(self.view, "suite", "")
        self.split = getattr(self.view, "split", "") or self.split
        self.model_names = list(self.model_names or getattr(self.view, "model_names", []))
        self.executor = self.executor if self.executor is not None else getattr(self.view, "executor", None)
        self.seed = getattr(self.view, "seed", self.seed) if self.seed == 0 else self.seed
        if self.failed is None:
            self.failed = np.zeros(np.shape(self.scores), bool)
        if np.shape(self.scores) != (len(self.view), len(self.model_names)):
            raise ValueError(f"scores must be ({len(self.view)}, {len(self.model_names)}), got {np.shape(self.scores)}")

    @property
    def mean_cost(self) -> np.ndarray:
        """Per-model USD/query: the price card a router weighs against predicted quality."""
        return self.costs.mean(axis=0)

    @property
    def accuracy(self) -> np.ndarray:
        """Per-model mean score over its labelled outcomes (NaN for a model with none: see `withhold`)."""
        scores = np.asarray(self.scores, float)
        observed = ~np.isnan(scores)
        if observed.all():
            return scores.mean(axis=0)
        n = observed.sum(axis=0)
        return np.where(n > 0, np.where(observed, scores, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)


def withhold(training: TrainingSet, models) -> TrainingSet:
    """The same training set with no labelled outcome of `models` (their score columns NaN): what fitting sees
    of a model just added to the pool. Its answers and prices stay (the replay executor has them, and a new
    model's price card is known); what fit learns of its quality is the prior only: the suitability table's
    cells fall back to the pool's mean, the learned router's head to the mean of the other heads, the learned
    verifier judges it with a classifier pooled over the other models' answers, the state verifier trains on
    no row of it, and it is no peer judge. The view is the caller's: give a fresh one, as fitted parts are
    memoised on it."""
    names = list(training.model_names)
    cols = [names.index(m) for m in models]
    scores = np.array(training.scores, float)
    scores[:, cols] = np.nan
    return TrainingSet(training.view, scores, training.costs, training.failed, names, dict(training.families),
                       training.executor, training.seed, training.suite, training.split)


def training_set(suite: Suite, query_ids, embeddings: np.ndarray | None = None, seed: int = 0,
                 split: str = "fit") -> TrainingSet:
    """The suite's queries `query_ids` with their labels (a failed call scores 0 and is flagged in `failed`)."""
    ids = list(map(str, query_ids))
    failed = suite.failed.loc[ids].to_numpy(bool)
    scores = np.where(failed, 0.0, suite.scores.loc[ids].to_numpy(float))
    return TrainingSet(Batch(queries_of(suite, ids), embeddings), scores, suite.costs.loc[ids].to_numpy(float),
                       failed, list(suite.model_names), dict(zip(suite.models["model"], suite.models["family"])),
                       ReplayExecutor.for_suite(suite), seed, suite.name, split)
