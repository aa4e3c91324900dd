"""What a policy may see: a SplitView at decision time (texts, embeddings, an executor) and FitData for training.

Neither carries a score column of the split it describes. FitData adds the fit split's scores, which is where
routers and learned judges legitimately get their training labels.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..execution import Query
from .replay import ReplayExecutor


@dataclass(eq=False)
class SplitView:
    """The queries of one split as a policy sees them. `memo` lets a policy cache per-view work (judge
    probabilities, neighbour lists) so a knob sweep pays for it once."""

    suite: str
    split: str
    seed: int
    queries: list[Query]
    embeddings: np.ndarray | None
    executor: ReplayExecutor
    model_names: list[str]
    memo: dict = field(default_factory=dict)

    @property
    def query_ids(self) -> list[str]:
        return [q.query_id for q in self.queries]

    @property
    def texts(self) -> list[str]:
        return [q.text for q in self.queries]

    def __len__(self) -> int:
        return len(self.queries)

    def cached(self, key, compute):
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def rng(self, *parts) -> np.random.Generator:
        """A generator that depends only on (suite, seed, split, parts): random policies replay identically."""
        digest = hashlib.sha256("|".join(map(str, (self.suite, self.seed, self.split, *parts))).encode()).digest()
        return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


@dataclass(eq=False)
class FitData:
    """The fit split with its labels: scores and costs (n, m) over model_names, cheapest first."""

    view: SplitView
    scores: np.ndarray
    costs: np.ndarray

    @property
    def seed(self) -> int:
        return self.view.seed

    @property
    def model_names(self) -> list[str]:
        return self.view.model_names

    @property
    def mean_cost(self) -> np.ndarray:
        """Per-model USD/query on fit: the price card a router weighs against predicted quality."""
        return self.costs.mean(axis=0)

    @property
    def accuracy(self) -> np.ndarray:
        return self.scores.mean(axis=0)
