"""Learned routers on query embeddings: kNN and MLP (predicted score - lambda * cost) and a RouteLLM-style
binary router. They read the query embedding at decision time and nothing else; costs are the fit split's
mean USD/query per model (a price card), scaled so the dearest model costs 1."""
from __future__ import annotations

import numpy as np

from ..context import FitData, SplitView
from ..replay import Decision
from .base import Policy, pick_utility

DEFAULT_LAMBDAS = tuple([0.0] + [round(float(x), 8) for x in np.geomspace(1e-3, 1e3, 37)])


def _embeddings(view: SplitView) -> np.ndarray:
    if view.embeddings is None:
        raise ValueError(f"{view.split} view has no embeddings: give the harness an encoder")
    return view.embeddings


class _UtilityRouter(Policy):
    """Shared knob: choose argmax of predicted score - lambda * unit cost."""

    knob_name = "lambda"

    def __init__(self, lambdas=DEFAULT_LAMBDAS):
        self.lambdas = list(lambdas)

    def fit_costs(self, data: FitData) -> None:
        self._tok = object()  # per-fit cache key: a refit never reads a stale per-view cache
        self.unit_cost = data.mean_cost / data.mean_cost.max()

    def knobs(self, hyper) -> list:
        return self.lambdas

    def predicted(self, view: SplitView, hyper) -> np.ndarray:
        raise NotImplementedError

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        return Decision(final=pick_utility(self.predicted(view, hyper), self.unit_cost, knob))


class KNNRouter(_UtilityRouter):
    """Predicted per-model score = mean score of the k nearest fit queries (cosine on unit embeddings).

    k is a hyper chosen on calibrate. Neighbour lists are computed once per view for the largest k."""

    name = "knn"

    def __init__(self, ks=(5, 10, 20, 50, 100), lambdas=DEFAULT_LAMBDAS, chunk: int = 2048):
        super().__init__(lambdas)
        self.ks, self.chunk = list(ks), chunk

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.fit_costs(data)
        self._x = _embeddings(data.view).astype(np.float32)
        self._y = data.scores
        self._ks = sorted({min(k, len(self._y)) for k in self.ks})

    def hypers(self) -> list:
        return self._ks

    def describe(self, hyper) -> str:
        return f"k={hyper}"

    def _neighbours(self, view: SplitView) -> np.ndarray:
        x, kmax = _embeddings(view).astype(np.float32), max(self._ks)
        out = np.empty((len(x), kmax), dtype=np.int64)
        for start in range(0, len(x), self.chunk):
            sims = x[start:start + self.chunk] @ self._x.T
            if kmax < sims.shape[1]:
                top = np.argpartition(-sims, kmax - 1, axis=1)[:, :kmax]
            else:
                top = np.tile(np.arange(sims.shape[1]), (len(sims), 1))
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            out[start:start + self.chunk] = np.take_along_axis(top, order, axis=1)
        return out

    def predicted(self, view: SplitView, hyper) -> np.ndarray:
        def compute():
            nbrs = view.cached((self._tok, "nbrs"), lambda: self._neighbours(view))
            return self._y[nbrs[:, :hyper]].mean(axis=1)
        return view.cached((self._tok, "pred", hyper), compute)


class MLPRouter(_UtilityRouter):
    """A small MLP regressor from the embedding to every model's score (sklearn, seeded by the split seed)."""

    name = "mlp"

    def __init__(self, hidden=(128,), alpha: float = 1e-3, max_iter: int = 300, lambdas=DEFAULT_LAMBDAS):
        super().__init__(lambdas)
        self.hidden, self.alpha, self.max_iter = hidden, alpha, max_iter

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        self.fit_costs(data)
        # early stopping holds out 10% of fit and needs two queries there: a smaller (collected) suite trains without
        self._model = MLPRegressor(hidden_layer_sizes=self.hidden, alpha=self.alpha, max_iter=self.max_iter,
                                   early_stopping=len(data.view) >= 20, random_state=data.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(_embeddings(data.view), data.scores)

    def predicted(self, view: SplitView, hyper) -> np.ndarray:
        def compute():
            pred = self._model.predict(_embeddings(view))
            return pred.reshape(len(view), -1)
        return view.cached((self._tok, "pred"), compute)


class RouteLLMRouter(Policy):
    """Binary router between the strongest model and a cheap one (RouteLLM): a logistic classifier on the
    embedding predicts P(strong beats weak); the threshold is set on calibrate so that a target share of
    calibrate queries goes to the strong model. Knob: that target share.

    Pair: strong = best fit accuracy; weak = given, else the most accurate model on fit costing at most
    `weak_cost_ratio` of the strong one (RouteLLM pairs GPT-4 with Mixtral, about 1/20 of its price)."""

    name = "routellm"
    knob_name = "strong_share"

    def __init__(self, weak: str | None = None, strong: str | None = None, weak_cost_ratio: float = 0.1,
                 shares=tuple(round(float(s), 6) for s in np.linspace(0, 1, 21)), C: float = 1.0):
        self.weak_name, self.strong_name, self.ratio, self.shares, self.C = weak, strong, weak_cost_ratio, shares, C

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        from sklearn.linear_model import LogisticRegression

        names, acc, cost = data.model_names, data.accuracy, data.mean_cost
        self.strong = names.index(self.strong_name) if self.strong_name else int(np.argmax(acc))
        if self.weak_name:
            self.weak = names.index(self.weak_name)
        else:
            cheap = [i for i in range(len(names)) if i != self.strong and cost[i] <= self.ratio * cost[self.strong]]
            cheap = cheap or [int(np.argmin(cost))]
            self.weak = max(cheap, key=lambda i: (acc[i], -cost[i]))
        self.pair = (names[self.weak], names[self.strong])
        self._tok = object()
        label = (data.scores[:, self.strong] > data.scores[:, self.weak]).astype(int)
        self._clf = None
        if 0 < label.sum() < len(label):
            self._clf = LogisticRegression(C=self.C, max_iter=1000).fit(_embeddings(data.view), label)
        p_cal = self._prob(calibrate)
        # Threshold per target share: route to strong when P >= threshold. Share 0 -> never, 1 -> always.
        self.thresholds = {s: (np.inf if s <= 0 else -np.inf if s >= 1 else float(np.quantile(p_cal, 1 - s)))
                           for s in self.shares}

    def _prob(self, view: SplitView) -> np.ndarray:
        if self._clf is None:
            return np.zeros(len(view))
        return view.cached((self._tok, "p"), lambda: self._clf.predict_proba(_embeddings(view))[:, 1])

    def knobs(self, hyper) -> list:
        return list(self.shares)

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        strong = self._prob(view) >= self.thresholds[knob]
        return Decision(final=np.where(strong, self.strong, self.weak))

    def describe(self, hyper) -> str:
        return f"{self.pair[0]} | {self.pair[1]}"
