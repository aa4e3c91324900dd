"""What a policy may see: a SplitView at decision time (texts, embeddings, an executor) and FitData for training.

Neither carries a score column of the split it describes. FitData adds the fit split's scores, which is where
routers and learned judges legitimately get their training labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.training import TrainingSet
from ..execution import Batch, ReplayExecutor, stable_rng


@dataclass(eq=False)
class SplitView(Batch):
    """The queries of one split as a policy sees them (a Batch with its replay executor and model order).
    `memo` lets a policy cache per-view work (judge verdicts, neighbour lists) so a knob sweep pays for it once."""

    suite: str = ""
    split: str = ""
    seed: int = 0
    executor: ReplayExecutor | None = None
    model_names: list[str] = field(default_factory=list)

    def rng(self, *parts) -> np.random.Generator:
        """A generator that depends only on (suite, seed, split, parts): random policies replay identically."""
        return stable_rng(self.suite, self.seed, self.split, *parts)


# What a policy is fitted on: the fit split's TrainingSet (view, scores, costs; model names from the view).
FitData = TrainingSet
