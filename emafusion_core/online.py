"""Self-optimising EMAFusion (the paper's title claim, our reading): after each mini-batch of traffic, the judge
panel's verdicts on the answers it paid for are folded into the suitability table, so the taxonomy router
learns which model is good where from its own judges, without labels.

One code path for replay and live: `observe(batch, executor)` runs `EMAFusion.decide` with recording on, reads
the per-judge verdicts the cascade left in its State, aggregates them with the panel's own rule, and updates.
- Weighting: a verdict counts as `weight` x its distance from 0.5 pseudo-observations (a confident verdict
  counts more than a hesitant one; an abstention counts nothing).
- Bounds: `cap` limits the pseudo-observations per (category, model) to cap x (what fit measured + the prior),
  so a wrong judge cannot run the router away from its fitted prior.
- Exploration: a model the router never tries gets no verdicts; on an `explore_share` of queries (seeded) one
  more model, not yet paid for, is bought and judged. Its cost is charged as judge cost of that query.
- `feedback`: what the update uses for an assessed answer, by default the panel's confidence. The evaluation's
  ceiling passes the true scores here instead (the same paid answers, labels instead of verdicts); nothing in
  this module reads a score.
What learns: the suitability table (capped pseudo-observations) and the learned router's per-model heads (a few
gradient steps per batch, pulled toward the fitted heads; the trunk stays). The verifier stays as fitted: its
calibration would be fitted to its own verdicts. A saved method (persist.py) keeps what was folded in and the
fitted heads it is pulled toward, and reloads to the same routing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .execution import Batch, stable_rng
from .judges.panel import aggregate
from .method import EMAFusion, OperatingPoint
from .results import Decision


@dataclass
class Assessed:
    """The answers the panel judged on one batch: query rows, model columns, aggregated confidence."""

    rows: np.ndarray
    models: np.ndarray
    confidence: np.ndarray


@dataclass
class Observations:
    """What one answered batch gives the loop, self-contained (no Batch, plain arrays): per judged answer (one
    per (query, model), abstentions dropped) its model, the panel's confidence, and its query's embedding and
    taxonomy probabilities; plus what exploration did. `SelfOptimiser.learn` folds it in; `serve` queues these
    per request and folds a batch of them at once (Observations.concat)."""

    rows: np.ndarray  # (n,) query row in its batch (what `feedback` indexes)
    models: np.ndarray  # (n,) model column
    confidence: np.ndarray  # (n,) the panel's aggregated confidence, never NaN
    embeddings: np.ndarray  # (n, d)
    probs: dict  # axis -> (n, n_categories)
    queries: int = 0  # queries answered
    explored: int = 0  # queries on which exploration bought one more model
    explore_skipped: int = 0  # ... of which the purchase gave no answer to judge (a budget refused it, it failed)
    explored_models: list = field(default_factory=list)  # (row, model, readable) of each exploration purchase

    @staticmethod
    def concat(items: Sequence["Observations"]) -> "Observations":
        items = list(items)
        if not items:
            raise ValueError("nothing to concatenate")
        offsets = np.cumsum([0] + [o.queries for o in items[:-1]])
        return Observations(
            np.concatenate([o.rows + off for o, off in zip(items, offsets)]).astype(int),
            np.concatenate([o.models for o in items]).astype(int),
            np.concatenate([o.confidence for o in items]).astype(float),
            np.concatenate([o.embeddings for o in items]),
            {axis: np.concatenate([o.probs[axis] for o in items]) for axis in items[0].probs},
            sum(o.queries for o in items), sum(o.explored for o in items), sum(o.explore_skipped for o in items),
            [e for o in items for e in o.explored_models])


@dataclass
class UpdateLog:
    """What the loop changed so far (what a read-only report shows)."""

    batches: int = 0
    queries: int = 0
    verdicts: int = 0
    explored: int = 0
    explore_skipped: int = 0  # explorations bought but unanswered (refused by a budget, failed): nothing folded
    pseudo_observations: float = 0.0
    per_model: dict = field(default_factory=dict)  # model -> verdicts folded in

    def to_dict(self) -> dict:
        return {**{k: v for k, v in vars(self).items() if k != "per_model"}, "per_model": dict(self.per_model)}

    @classmethod
    def from_dict(cls, d: dict) -> "UpdateLog":
        ints = ("batches", "queries", "verdicts", "explored", "explore_skipped")
        per_model = d.get("per_model", {})
        if not isinstance(per_model, dict) or not all(isinstance(v, int) for v in per_model.values()):
            raise ValueError("per_model: expected a mapping of model names to counts")
        for name in ints:
            if not isinstance(d.get(name, 0), int) or d.get(name, 0) < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {d.get(name)!r}")
        return cls(**{k: int(d.get(k, 0)) for k in ints}, pseudo_observations=float(d.get("pseudo_observations", 0.0)),
                   per_model={str(k): int(v) for k, v in per_model.items()})


def assessed_answers(state, panel_names: list[str], rule: str) -> Assessed:
    """Aggregate the recorded per-judge verdicts (State.verdicts) into one panel confidence per judged answer."""
    if not state.verdicts:
        return Assessed(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    pairs: dict[tuple[int, int], dict[str, float]] = {}
    for i, j, judge, conf, _ in state.verdicts:
        pairs.setdefault((i, j), {})[judge] = np.nan if conf is None else conf
    keys = list(pairs)
    names = sorted({name for v in pairs.values() for name in v}, key=lambda n: (n not in panel_names, n))
    matrix = np.array([[pairs[k].get(n, np.nan) for n in names] for k in keys], float)
    conf = aggregate(matrix, rule if rule != "calibrated" else "mean")
    rows, models = (np.array(x, int) for x in zip(*keys))
    return Assessed(rows, models, conf)


class SelfOptimiser:
    """Wraps a fitted EMAFusion and one operating point; `observe` answers a batch and learns from its verdicts.

    weight: pseudo-observations per fully confident verdict; cap: bound on pseudo-observations per cell relative
    to the fitted mass + prior; explore_share: share of queries that buy one extra model for its verdict.

    The two halves of `observe` are public, for a caller that answers queries itself (`serve`,
    online_store.SharedLoop): `assess` reads what one answered batch gives (judging the returned answers when the
    point runs no cascade, exploring), `learn` folds Observations in. One implementation for replay and serve."""

    def __init__(self, method: EMAFusion, point: OperatingPoint, weight: float = 1.0, cap: float = 1.0,
                 explore_share: float = 0.05, seed: int = 0, head_steps: int = 5, head_shrinkage: float = 1.0,
                 panel: tuple[str, ...] | None = None):
        """head_steps: gradient steps on the learned router's heads per batch (0: the learned router stays as
        fitted); head_shrinkage: their L2 pull toward the fitted heads. panel: the judges whose verdicts the loop
        learns from when the point runs no cascade of its own (calibrate may choose the router alone): they
        judge the returned answers (charged). Default: the point's panel, else the fitted verifier."""
        self.panel_names = tuple(point.panel) if point.cascade and point.panel else tuple(panel or ("verifier",))
        if getattr(method, "taxonomy_router_", None) is None:
            raise ValueError("the self-optimising loop updates the taxonomy router's suitability table, which this "
                             "method does not have (fitted without taxonomy labels)")
        if not (weight >= 0 and cap >= 0 and 0 <= explore_share <= 1):
            raise ValueError("weight and cap must be >= 0 and explore_share in [0, 1]")
        self.method, self.point = method, point
        self.head_steps, self.head_shrinkage = head_steps, head_shrinkage
        self.weight, self.cap, self.explore_share, self.seed = weight, cap, explore_share, seed
        self.log = UpdateLog()
        table = method.taxonomy_router_.suitability
        self._initial_quality = {axis: table.quality(axis).copy() for axis in table._sum}

    def _explore(self, batch: Batch, state, rng: np.random.Generator, judges=None) -> tuple[Assessed, list]:
        """Buy and judge one unpaid model on a seeded share of the batch (charged to the judges). Returns the
        judged purchases and every purchase as (row, model, readable): an unreadable one (a budget refused it,
        the call failed) is skipped, never judged."""
        n, m = state.paid.shape
        pick = np.flatnonzero(rng.random(n) < self.explore_share)
        rows, models = [], []
        for i in pick:
            unpaid = np.flatnonzero(~state.paid[i])
            if len(unpaid):
                rows.append(int(i))
                models.append(int(rng.choice(unpaid)))
        if not rows:
            return Assessed(np.zeros(0, int), np.zeros(0, int), np.zeros(0)), []
        rows_a, models_a = np.array(rows), np.array(models)
        for j in np.unique(models_a):
            state.buy(rows_a[models_a == j], int(j), for_judge=True)
        readable = state.readable[rows_a, models_a]
        bought = [(int(i), int(j), bool(r)) for i, j, r in zip(rows_a, models_a, readable)]
        rows_a, models_a = rows_a[readable], models_a[readable]
        panel = self.method.panel(self.panel_names, self.point.rule, judges)
        conf = panel.assess(state, rows_a, models_a) if len(rows_a) else np.zeros(0)
        return Assessed(rows_a, models_a, np.asarray(conf, float)), bought

    def assess(self, batch: Batch, decision: Decision, state, *, explore: bool = True, key: Sequence | None = None,
               judges=None) -> Observations:
        """What an answered batch (`decision`, and the State `decide(..., record=True)` left) gives the loop: the
        panel's verdicts on the answers it paid for (judging the returned answers first when the point runs no
        cascade), plus an exploration purchase on a seeded share of queries (when `explore`). key: what seeds the
        exploration (default the batch's query ids); judges: judges beyond the fitted ones (LLM judges on the
        caller's client), as for `decide`. Reads no score."""
        if not (self.point.cascade and self.point.panel):  # the router alone: the loop's panel judges its answers
            rows_all = np.arange(len(batch))
            readable = state.readable[rows_all, decision.final]
            if readable.any():
                self.method.panel(self.panel_names, self.point.rule, judges).assess(state, rows_all[readable],
                                                                                    decision.final[readable])
        # seeded by the batch's own queries (not the loop's history): a reloaded loop explores the same way
        rng = stable_rng("self-optimising", self.seed, *(batch.query_ids if key is None else key))
        if explore:
            explored, bought = self._explore(batch, state, rng, judges)
        else:
            explored, bought = Assessed(np.zeros(0, int), np.zeros(0, int), np.zeros(0)), []
        judged = assessed_answers(state, list(self.panel_names), self.point.rule)
        rows = np.r_[judged.rows, explored.rows].astype(int)
        models = np.r_[judged.models, explored.models].astype(int)
        conf = np.r_[judged.confidence, explored.confidence]
        # one update per (query, model): the exploration verdict may repeat a judged pair's
        _, first = np.unique(rows * state.paid.shape[1] + models, return_index=True)
        rows, models, conf = rows[first], models[first], conf[first]
        keep = ~np.isnan(conf)  # an abstaining panel (e.g. an unparseable LLM judge reply) folds nothing
        rows, models, conf = rows[keep], models[keep], conf[keep]
        probs = self.method._probs(batch)
        return Observations(rows, models, conf, self.method.embed(batch)[rows],
                            {axis: p[rows] for axis, p in probs.items()}, len(batch), len(bought),
                            sum(not r for _, _, r in bought), bought)

    def weights(self, confidence: np.ndarray) -> np.ndarray:
        """Pseudo-observations per verdict: `weight` x its distance from 0.5 (a hesitant verdict counts little)."""
        return self.weight * np.abs(np.asarray(confidence, float) - 0.5) * 2

    def learn(self, observed: Observations, values: np.ndarray | None = None) -> None:
        """Fold Observations into the suitability table and the learned router's heads, and count them in the
        log. values: what to fold in per answer (default: the panel's confidences, weighted by `weights`; given
        values, e.g. the evaluation's ceiling of true scores, count `weight` each)."""
        o = observed
        if values is None:
            values, weights = o.confidence, self.weights(o.confidence)
        else:
            values, weights = np.asarray(values, float), np.full(len(o.rows), self.weight)
        self._fold(o.embeddings, o.probs, o.models, values, weights)
        self.log.batches += 1
        self.log.queries += o.queries
        self.log.explored += o.explored
        self.log.explore_skipped += o.explore_skipped

    def observe(self, batch: Batch, executor, feedback: Callable | None = None) -> Decision:
        """Answer `batch` at the operating point, then fold the panel's verdicts into the suitability table.
        feedback(batch, rows, models, confidence) -> values to fold in (default: the confidences)."""
        decision, state = self.method.decide(batch, executor, self.point, record=True)
        observed = self.assess(batch, decision, state)
        values = None if feedback is None else feedback(batch, observed.rows, observed.models, observed.confidence)
        self.learn(observed, values)
        # exploration purchases are charged to the queries they were made on
        decision.judge_cost, decision.judge_calls = state.judge_cost.copy(), state.judge_calls.copy()
        return decision

    def _fold(self, embeddings, probs, models, values, weights) -> None:
        """The one update: a few head steps, then each model's verdicts into the suitability table (capped)."""
        learned = self.method.learned_
        if self.head_steps and len(models) and learned.config.loss == "bce" and weights.sum() > 0:
            learned.update_heads(embeddings, models, values, weights, steps=self.head_steps,
                                 shrinkage=self.head_shrinkage)
        table = self.method.taxonomy_router_.suitability
        names = self.method.model_names_
        for j in np.unique(models):
            sel = models == j
            label_probs = {axis: p[sel] for axis, p in probs.items()}
            self.log.pseudo_observations += table.update(label_probs, int(j), values[sel], weights[sel],
                                                         cap=self.cap)
            self.log.verdicts += int(sel.sum())
            self.log.per_model[names[j]] = self.log.per_model.get(names[j], 0) + int(sel.sum())

    def shifts(self, top: int = 10) -> dict:
        """Read-only report of what the loop changed: counts, per model the pseudo-observations folded in and
        how far its mean suitability (over the categories of each axis) moved since the loop started, and the
        `top` largest moves of single cells (axis, category, model, before, after)."""
        table = self.method.taxonomy_router_.suitability
        names = self.method.model_names_
        out = {"updates": {k: v for k, v in vars(self.log).items() if k != "per_model"},
               "verdicts_per_model": dict(self.log.per_model), "axes": {}}
        cells = []
        for axis, before in self._initial_quality.items():
            after = table.quality(axis)
            moved = after - before
            out["axes"][axis] = {"pseudo_observations": dict(zip(names, table.pseudo(axis).sum(0).round(3).tolist())),
                                 "mean_shift": dict(zip(names, moved.mean(0).round(5).tolist())),
                                 "largest_shift": float(np.abs(moved).max()) if moved.size else 0.0}
            categories = list(self.method.taxonomy_.categories[axis])
            for c, j in zip(*np.nonzero(moved)):
                cells.append({"axis": axis, "category": str(categories[c]), "model": names[j],
                              "before": round(float(before[c, j]), 5), "after": round(float(after[c, j]), 5),
                              "shift": round(float(moved[c, j]), 5)})
        cells.sort(key=lambda d: (-abs(d["shift"]), d["axis"], d["category"], d["model"]))
        out["largest_shifts"] = cells[:top]
        return out
