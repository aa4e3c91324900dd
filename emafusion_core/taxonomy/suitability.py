"""Phi(model, labels): how proficient each model has proven on queries carrying those labels.

Our default (the paper does not define Phi): for each axis and category, the model's mean score on
fit-split queries of that category, shrunk toward the model's overall mean by `prior_strength` pseudo-
queries so that small categories do not get extreme values. With soft labels, a query's suitability on
an axis is the probability-weighted mean over categories; Phi is the minimum over the four axes (a model
must be proven on every facet of the query).
"""
from __future__ import annotations

import numpy as np

from .classifiers import Probs
from .schema import AXES, Taxonomy


class SuitabilityTable:
    def __init__(self, taxonomy: Taxonomy, model_names: list[str], prior_strength: float = 10.0):
        if prior_strength < 0:
            raise ValueError("prior_strength must be >= 0")
        self.taxonomy, self.model_names, self.prior_strength = taxonomy, list(model_names), prior_strength
        self._sum: dict[str, np.ndarray] = {}  # axis -> (n_categories, n_models) probability-weighted scores
        self._mass: dict[str, np.ndarray] = {}  # axis -> (n_categories, n_models) probability mass observed
        self._overall = np.zeros(len(self.model_names))
        self._pseudo: dict[str, np.ndarray] = {}  # axis -> pseudo-observations added by `update`
        self._fitted_mass: dict[str, np.ndarray] = {}  # axis -> the mass fit measured (what `cap` is relative to)

    def fit(self, label_probs: Probs, scores: np.ndarray) -> "SuitabilityTable":
        """label_probs: fit-split labels (one-hot or soft); scores: (n_queries, n_models) observed scores."""
        scores = np.asarray(scores, float)
        if scores.ndim != 2 or scores.shape[1] != len(self.model_names):
            raise ValueError(f"scores must be (n_queries, {len(self.model_names)}), got {scores.shape}")
        observed = ~np.isnan(scores)  # NaN: no labelled outcome (data.training.withhold)
        if observed.all():
            self._overall = scores.mean(axis=0)
        else:
            n = observed.sum(axis=0)
            overall = np.where(observed, scores, 0.0).sum(axis=0) / np.maximum(n, 1)
            # a model with no labelled outcome: the prior is the pool's mean (the mean of the others' means)
            self._overall = np.where(n > 0, overall, overall[n > 0].mean() if (n > 0).any() else 0.5)
        for axis in AXES:
            p = label_probs[axis]
            if observed.all():
                self._sum[axis] = p.T @ scores
                self._mass[axis] = np.repeat(p.sum(axis=0)[:, None], len(self.model_names), axis=1)
            else:  # only labelled outcomes count: an unlabelled model's cells hold the prior alone
                self._sum[axis] = p.T @ np.where(observed, scores, 0.0)
                self._mass[axis] = p.T @ observed.astype(float)
        return self

    def quality(self, axis: str) -> np.ndarray:
        """(n_categories, n_models) smoothed quality per category of one axis."""
        if axis not in self._sum:
            raise RuntimeError("SuitabilityTable used before fit")
        k = self.prior_strength
        denom = self._mass[axis] + k
        # a category never seen (and no prior) says nothing: fall back to the model's overall mean
        safe = np.where(denom > 0, denom, 1.0)
        return np.where(denom > 0, (self._sum[axis] + k * self._overall) / safe, self._overall)

    def support(self, axis: str) -> np.ndarray:
        return self._mass[axis]

    def phi(self, label_probs: Probs) -> np.ndarray:
        """(n_queries, n_models) suitability of every model for every query."""
        per_axis = [label_probs[axis] @ self.quality(axis) for axis in AXES]
        return np.min(np.stack(per_axis), axis=0)

    def update(self, label_probs: Probs, model_index: int, verdicts, weight=1.0, cap: float | None = None) -> float:
        """Fold in judge verdicts on new answers of one model (the self-optimising loop, online.py): each verdict
        counts as `weight` (a number, or one per verdict) pseudo-observations in the categories its query
        belongs to. cap: pseudo-observations per (category, model) never exceed cap x (the fitted mass +
        prior_strength), so a run of wrong verdicts can move a cell only so far from what fit measured; an
        update beyond it is scaled down. Returns the pseudo-observations applied (summed over the first axis)."""
        verdicts = np.asarray(verdicts, float)
        w = np.broadcast_to(np.asarray(weight, float), verdicts.shape)
        applied = 0.0
        for n, axis in enumerate(AXES):
            if axis not in self._pseudo:
                self._pseudo[axis] = np.zeros_like(self._mass[axis])
                self._fitted_mass[axis] = self._mass[axis].copy()
            p = label_probs[axis] * w[:, None]
            add = p.sum(axis=0)
            if cap is not None:
                room = np.maximum(cap * (self._fitted_mass[axis][:, model_index] + self.prior_strength)
                                  - self._pseudo[axis][:, model_index], 0.0)
                scale = np.where(add > 0, np.minimum(1.0, room / np.where(add > 0, add, 1.0)), 0.0)
                p, add = p * scale[None, :], add * scale
            self._sum[axis][:, model_index] += p.T @ verdicts
            self._mass[axis][:, model_index] += add
            self._pseudo[axis][:, model_index] += add
            applied += float(add.sum()) if n == 0 else 0.0
        return applied

    def pseudo(self, axis: str) -> np.ndarray:
        """(n_categories, n_models) pseudo-observations folded in by `update` so far (zeros before any)."""
        return self._pseudo.get(axis, np.zeros_like(self._mass[axis]))
