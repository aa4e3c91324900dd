"""LearnedRouter: frozen query embedding (+ optional extra features) -> ScoreNet -> top-k under cost.

The router keeps only the trained network and the per-model expected costs it was given; it never holds
a score table, so nothing it does at routing time can depend on an outcome.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Sequence

import numpy as np
import torch

from ..execution import Query
from ..features import Encoder
from ..routing import Route
from .selection import allowed_models, check_costs, select_top_k
from .train import TrainConfig, TrainReport, deterministic_torch, train_score_net

_UNSET = object()  # "use the router's own setting" (None already means "no budget" for max_cost_usd)

ExtraFeatures = Callable[[Sequence[str]], np.ndarray]


class LearnedRouter:
    """Predicts each model's score for a query and routes to the k best under a cost constraint.

    encoder: frozen Encoder applied to Query.text (the question without few-shot exemplars).
    model_costs: expected USD per query of each model (e.g. its fit-split mean cost), as a mapping by
        name or a sequence aligned with model_names.
    k: candidates per query (paper default 3). cost_weight: lambda in predicted - lambda * cost / max cost.
    max_cost_usd: models whose expected cost exceeds it are never chosen.
    extra_features: optional callable texts -> (n, d) array appended to the embedding (e.g. taxonomy
        probabilities); an explicit matrix passed to fit/predict takes precedence over it.
    config / train_options: a TrainConfig, and field overrides such as seed=1, loss="mse", patience=5.
    """

    def __init__(self, encoder: Encoder | None, model_names: Sequence[str], model_costs, k: int = 3,
                 cost_weight: float = 0.0, max_cost_usd: float | None = None,
                 extra_features: ExtraFeatures | None = None, config: TrainConfig | None = None,
                 **train_options):
        names = list(model_names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"model_names must be distinct strings, at least one, got {names}")
        if extra_features is not None and not callable(extra_features):
            raise ValueError("extra_features must be a callable texts -> (n, d) array, or None")
        self.encoder, self.model_names, self.extra_features = encoder, names, extra_features
        # None: routes only queries embedded elsewhere (the method embeds a batch once for every part)
        self.dim = None if encoder is None else encoder.dim
        self.model_costs = _costs_by_name(model_costs, names)
        self.config = dataclasses.replace(config or TrainConfig(), **train_options)
        self.k, self.cost_weight, self.max_cost_usd = k, cost_weight, max_cost_usd
        select_top_k(np.zeros((0, len(names))), self.model_costs, k, cost_weight, max_cost_usd)  # validates
        self.net: torch.nn.Module | None = None
        self.report: TrainReport | None = None
        self._extra_dim = 0

    # --- training -------------------------------------------------------------------------------------
    def fit(self, fit_texts: Sequence[str], fit_scores, cal_texts: Sequence[str], cal_scores,
            fit_extra=None, cal_extra=None) -> "LearnedRouter":
        """Train on fit-split scores, early-stopping on calibrate. Scores: (n, m) array in model_names
        order, or a DataFrame whose columns are model names (reordered here). NaN = not observed."""
        y_fit, y_cal = self._score_matrix(fit_scores, "fit_scores"), self._score_matrix(cal_scores, "cal_scores")
        x_fit = self._features(list(fit_texts), fit_extra, training=True)
        x_cal = self._features(list(cal_texts), cal_extra, training=True)
        self._extra_dim = x_fit.shape[1] - self.dim
        self.net, self.report = train_score_net(x_fit, y_fit, x_cal, y_cal, self.config)
        self._prior_heads(y_fit)
        return self

    def fit_embeddings(self, x_fit: np.ndarray, fit_scores, x_val: np.ndarray, val_scores) -> "LearnedRouter":
        """Train on embeddings already computed with this router's encoder (extra features appended by the
        caller); x_val / val_scores drive early stopping."""
        y_fit, y_val = self._score_matrix(fit_scores, "fit_scores"), self._score_matrix(val_scores, "val_scores")
        x_fit, x_val = np.asarray(x_fit, np.float32), np.asarray(x_val, np.float32)
        if self.dim is None and x_fit.ndim == 2:
            self.dim = x_fit.shape[1]
        if x_fit.ndim != 2 or x_fit.shape[1] < self.dim or x_val.shape[1:] != x_fit.shape[1:]:
            raise ValueError(f"embeddings must be (n, >= {self.dim}) and alike, got {x_fit.shape}, {x_val.shape}")
        self._extra_dim = x_fit.shape[1] - self.dim
        self.net, self.report = train_score_net(x_fit, y_fit, x_val, y_val, self.config)
        self._prior_heads(y_fit)
        return self

    def _prior_heads(self, y_fit: np.ndarray) -> None:
        """A model with no observed score in fit (all NaN: a model just added to the pool, data.training.withhold)
        got no gradient; its head becomes the mean of the other heads, so it predicts the pool's average model
        (the suitability table's prior for it too) rather than whatever its random initialisation says."""
        unseen = np.isnan(y_fit).all(axis=0)
        if not unseen.any() or unseen.all():
            return
        with torch.no_grad():
            for param in (self.net.heads.weight, self.net.heads.bias):
                param[torch.from_numpy(unseen)] = param[torch.from_numpy(~unseen)].mean(0)

    def _score_matrix(self, scores, what: str) -> np.ndarray:
        columns = getattr(scores, "columns", None)
        if columns is not None:
            missing = [m for m in self.model_names if m not in set(columns)]
            if missing:
                raise ValueError(f"{what} lacks columns for models {missing}")
            scores = scores[self.model_names].to_numpy(dtype=float)
        return np.array(scores, dtype=np.float32)  # a copy: later edits to the caller's table change nothing

    def _features(self, texts: list[str], extra, training: bool = False) -> np.ndarray:
        if self.encoder is None:
            raise ValueError("this router has no encoder: route embedded queries (predict_from_embeddings)")
        return self._join(self.encoder.encode(texts), extra, texts, training)

    def _join(self, embeddings: np.ndarray, extra, texts: list[str] | None, training: bool = False) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings must be (n, {self.dim}), got {embeddings.shape}")
        if extra is None and self.extra_features is not None:
            if texts is None:
                raise ValueError("this router computes extra features from texts: pass extra= with embeddings")
            extra = self.extra_features(texts)
        if extra is None:
            extra = np.zeros((len(embeddings), 0), np.float32)
        extra = np.asarray(extra, np.float32)
        if extra.ndim != 2 or len(extra) != len(embeddings):
            raise ValueError(f"extra features must be ({len(embeddings)}, d), got {extra.shape}")
        if not training and extra.shape[1] != self._extra_dim:
            raise ValueError(f"router was fitted with {self._extra_dim} extra features, got {extra.shape[1]}")
        return np.concatenate([embeddings, extra], axis=1)

    # --- prediction -----------------------------------------------------------------------------------
    def predict_scores(self, texts: Sequence[str], extra=None) -> np.ndarray:
        """(n, m) predicted scores in model_names order (probabilities under bce)."""
        texts = list(texts)
        return self._predict(self._features(texts, extra))

    def predict_from_embeddings(self, embeddings: np.ndarray, extra=None) -> np.ndarray:
        return self._predict(self._join(embeddings, extra, None))

    def update_heads(self, embeddings: np.ndarray, models: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     steps: int = 5, lr: float = 0.05, shrinkage: float = 1.0) -> float:
        """A few gradient steps on the per-model heads only (the trunk stays as fitted) toward `targets` in [0, 1]
        for (query, model) pairs, e.g. judge verdicts (online.py), weighted, with an L2 pull of strength
        `shrinkage` toward the heads fit produced, so pseudo-labels move the router only so far. BCE routers only.
        Returns the last step's fit loss."""
        if self.net is None or self.config.loss != "bce":
            raise RuntimeError("update_heads needs a fitted router trained with the bce loss")
        if not hasattr(self, "prior_heads_"):
            self.prior_heads_ = [t.detach().clone() for t in (self.net.heads.weight, self.net.heads.bias)]
        x = torch.from_numpy(self._join(embeddings, None, None))
        j = torch.from_numpy(np.asarray(models, np.int64))
        y = torch.from_numpy(np.asarray(targets, np.float32))
        w = torch.from_numpy(np.asarray(weights, np.float32))
        loss_value = 0.0
        with deterministic_torch(0, 1):  # the same update on every machine, whatever its core count
            with torch.no_grad():
                h = self.net.trunk.eval()(x)
            head = self.net.heads
            opt = torch.optim.SGD(head.parameters(), lr=lr)
            for _ in range(steps):
                opt.zero_grad()
                logit = (h * head.weight[j]).sum(1) + head.bias[j]
                fit = (torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none") * w).sum()
                fit = fit / w.sum().clamp_min(1e-9)
                fit.backward()
                opt.step()
                # the L2 pull as a proximal step: stable for any shrinkage (a gradient step on it is not)
                with torch.no_grad():
                    for param, prior in zip((head.weight, head.bias), self.prior_heads_):
                        param.copy_((param + 2 * lr * shrinkage * prior) / (1 + 2 * lr * shrinkage))
                loss_value = float(fit.detach())
        self.net.eval()
        return loss_value

    def _predict(self, x: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("LearnedRouter.fit must be called before predicting or routing")
        with torch.inference_mode():
            out = self.net(torch.from_numpy(x))
            if self.config.loss == "bce":
                out = torch.sigmoid(out)
        return out.numpy().astype(np.float64)

    # --- selection and routing ------------------------------------------------------------------------
    def select(self, predicted: np.ndarray, k: int | None = None, cost_weight: float | None = None,
               max_cost_usd=_UNSET) -> np.ndarray:
        """(n, k') model indices (into model_names), cheapest first; defaults are the router's settings."""
        return select_top_k(predicted, self.model_costs, self.k if k is None else k,
                            self.cost_weight if cost_weight is None else cost_weight,
                            self.max_cost_usd if max_cost_usd is _UNSET else max_cost_usd)

    def route_batch(self, queries: Sequence[Query]) -> list[Route]:
        if len(queries) == 0:
            return []
        return self._routes(self.predict_scores([q.text for q in queries]))

    def route_embedded(self, embeddings: np.ndarray, extra=None) -> list[Route]:
        """Route queries whose embeddings are already computed (the latency the benchmark measures)."""
        return self._routes(self.predict_from_embeddings(embeddings, extra))

    def _routes(self, predicted: np.ndarray) -> list[Route]:
        chosen = self.select(predicted)
        best = self.select(predicted, k=1)[:, 0]  # primary: the top-utility model, run when there is no cascade
        names = self.model_names
        return [Route(candidates=tuple(names[j] for j in row), path="learned", router_cost_usd=0.0,
                      info={"predicted": dict(zip(names, map(float, scores)))}, primary=names[top])
                for row, top, scores in zip(chosen, best, predicted)]

    @property
    def allowed(self) -> np.ndarray:
        """Models the cost budget lets this router choose at all."""
        return allowed_models(self.model_costs, self.max_cost_usd)


def _costs_by_name(model_costs, names: list[str]) -> np.ndarray:
    if isinstance(model_costs, Mapping) or hasattr(model_costs, "items"):  # dict or pandas Series, by name
        lookup = dict(model_costs.items())
        missing = [n for n in names if n not in lookup]
        if missing:
            raise ValueError(f"model_costs has no cost for models {missing}")
        model_costs = [lookup[n] for n in names]
    costs = check_costs(model_costs)
    if len(costs) != len(names):
        raise ValueError(f"model_costs has {len(costs)} entries for {len(names)} models")
    return costs.copy()
