"""The cold start of a model added to the pool with no labelled outcome (issue 17, item 2): how many streamed,
unlabelled queries until the self-optimising loop (online.py) routes it where it is good.

One seed, in the self-optimising experiment's own code path (StreamExperiment: the same labelled slice of fit,
the same stream order, the same loop hyperparameters, calibrate choosing the knobs once before the stream):

- The newcomer, by a rule fixed before any result was seen: per taxonomy category (the query's task_type /
  complexity / domain labels; categories with at least `min_support` calibrate queries), a model is *good* there
  when its calibrate accuracy is the best or within `margin` (1 pp) of the best, by calibrate's labels; the
  newcomer is the model good in the most categories among all but the dearest (calibrate mean cost); ties: the
  higher calibrate accuracy, then the cheaper. Its good categories are those, the others are "elsewhere".
- The cold system: EMAFusion fitted on the labelled slice with the newcomer's outcomes withheld
  (data.training.withhold: its score column NaN, so the suitability table holds only the prior for it, the pool's
  mean, its learned-router head is the mean of the others, the verifier judges it with a classifier pooled over
  the other models' answers, it is no peer). It stays in the pool and its price is known. Calibrate (labelled,
  as in the stream experiment) chooses its knobs and judges once, before the stream (calibrate's labels grade
  whole routing decisions, so they do read the newcomer's calibrate answers where the cold system already routes
  to it, as they read every model's; fit's labels of it are never read).
- The reference: the same slice fitted with the newcomer's labels (StreamExperiment's start, shared with it),
  frozen, answering the same streamed batches at its own operating point.
- The stream: the loop learns from its judges' verdicts after each batch; per batch a row with the newcomer's
  share of returned answers on the batch's queries of its good categories and elsewhere (cold loop and
  reference), its suitability on those queries (phi, after the update) under the cold and the reference table,
  the verdicts it got, exploration spent (purchases and the batch's judge USD, exploration charged there) and, at
  the start and after the stream, accuracy / AIQ on the reported split.

What drives the cold start: the prior is neutral (the pool's mean, not optimistic), so the newcomer's verdicts
come from exploration (`explore_share` of queries buy one unpaid model, chosen uniformly, charged as judge cost;
SelfOptimiser._explore) and from whatever routing the neutral prior already gives it (the taxonomy path keeps a
model whose suitability clears tau_c). Note the loop's `cap`: a cell's pseudo-observations are bounded by cap x
(what fit measured + prior_strength), which for the newcomer is cap x prior_strength alone.

"Queries until routed where it is good" (`queries_until`, rule fixed before the results): the first streamed
count (the batch end) at which the cold loop's share of the newcomer in its good categories, on that batch,
reaches half the reference's share there over the whole stream; NaN when it does not within the stream (or the
reference never routes it there).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.training import withhold
from ..method import fit_labels
from ..online import SelfOptimiser
from .emafusion import fitted_method
from .self_optimising import StreamExperiment, _mean, _subview, _total_cost

CATEGORY_AXES = ("task_type", "complexity", "domain")


def categories_of(queries, axes=CATEGORY_AXES) -> np.ndarray:
    """Each query's taxonomy category, its labels on `axes` joined by '/' (the suite's label columns or the
    labelling rules: what fit labels, not what the fast classifier predicts)."""
    labels = fit_labels(queries)
    return labels[list(axes)].astype(str).agg("/".join, axis=1).to_numpy(object)


def choose_newcomer(scores: np.ndarray, costs: np.ndarray, categories: np.ndarray, margin: float = 0.01,
                    min_support: int = 20) -> tuple[int, list[str], pd.DataFrame]:
    """The rule of the module docstring on one labelled split (calibrate): (newcomer index, its good categories,
    per category and model whether it is good there)."""
    scores, costs = np.asarray(scores, float), np.asarray(costs, float)
    cats, counts = np.unique(categories, return_counts=True)
    cats = cats[counts >= min_support]
    acc = np.array([scores[categories == c].mean(0) for c in cats]).reshape(len(cats), scores.shape[1])
    good = acc >= acc.max(axis=1, keepdims=True) - margin if len(cats) else np.zeros((0, scores.shape[1]), bool)
    mean_cost, overall = costs.mean(0), scores.mean(0)
    dearest = int(np.argmax(mean_cost))
    candidates = [j for j in range(scores.shape[1]) if j != dearest]
    j = min(candidates, key=lambda j: (-int(good[:, j].sum()), -overall[j], mean_cost[j]))
    return j, [str(c) for c in cats[good[:, j]]], pd.DataFrame(good, index=cats)


class ColdStart:
    """One suite's cold-start experiment on top of a StreamExperiment (its harness, slices, loop hyperparameters,
    reported split and cached labelled starts). label_share: the labelled slice of fit; max_stream: streamed
    queries; batch_size: queries per update (default: the stream experiment's); margin, min_support: the rule for
    good categories; evaluate: accuracy / AIQ on the reported split after the stream, and with evaluate_start also
    before it (each an evaluation of the calibrated points: a few seconds on a large suite); `timings` keeps the
    seconds per seed and phase."""

    def __init__(self, stream: StreamExperiment, label_share: float = 0.1, max_stream: int = 300,
                 batch_size: int | None = None, margin: float = 0.01, min_support: int = 20, evaluate: bool = True,
                 evaluate_start: bool = False):
        if not 0 < label_share < 1 or max_stream < 1:
            raise ValueError("label_share must be in (0, 1) and max_stream >= 1")
        self.stream, self.label_share, self.max_stream = stream, float(label_share), int(max_stream)
        self.batch_size = int(batch_size or stream.batch_size)
        self.margin, self.min_support, self.evaluate, self.evaluate_start = margin, min_support, evaluate, evaluate_start
        self.timings: dict[int, dict[str, float]] = {}
        self.start_quality: dict[int, dict[str, np.ndarray]] = {}  # seed -> the cold table before the stream

    def newcomer(self, cal) -> tuple[int, list[str]]:
        h = self.stream.harness
        j, good, _ = choose_newcomer(h.scorer.scores(cal.query_ids), h.scorer.costs(cal.query_ids),
                                     categories_of(cal.queries), self.margin, self.min_support)
        return j, good

    def run(self, seed: int) -> pd.DataFrame:
        s, h = self.stream, self.stream.harness
        clock = _Clock()
        with h.limits():
            views = h.views(seed)
            fit, cal, test = views["fit"], views["calibrate"], views[s.report_on]
            j, good = self.newcomer(cal)
            name = h.suite.model_names[j]
            labelled, stream = s.slices(seed, self.label_share, len(fit))
            stream = stream[: self.max_stream]
            ref, _, ref_point, ref_eval = s._start(seed, self.label_share, fit, cal, test, labelled)
            clock("reference")
            cold = fitted_method(withhold(h.fit_data(_subview(fit, labelled, "fit")), [name]))
            clock("fit")
            # the cold system's own knobs and judges, chosen on calibrate (the reference's panel would carry what
            # its fit learnt from the newcomer's labels: a test caught that leak)
            points, point = s._points(cold, cal)
            clock("calibrate")
            start_eval = s._evaluate(cold, points, test) if self.evaluate and self.evaluate_start else {}
            clock("evaluate")
            loop = SelfOptimiser(cold, point, s.weight, s.cap, s.explore_share, seed, panel=s._panel_of(points))
            table, ref_table = cold.taxonomy_router_.suitability, ref.taxonomy_router_.suitability
            self.start_quality[seed] = {axis: table.quality(axis).copy() for axis in table._sum}
            good_set = set(good)
            out = [dict(seen=0, **{f"{k}": v for k, v in start_eval.items()},
                        **{f"reference_{k}": v for k, v in ref_eval.items()})]
            bs = self.batch_size
            for start in range(0, len(stream), bs):
                batch = _subview(fit, stream[start:start + bs], "stream")
                in_good = np.array([c in good_set for c in categories_of(batch.queries)], bool)
                decision = loop.observe(replace(batch, memo={}), fit.executor)
                reference = ref.decide(replace(batch, memo={}), fit.executor, ref_point)[0]
                probs = cold._probs(replace(batch, memo={}))
                phi, ref_phi = table.phi(probs)[:, j], ref_table.phi(ref._probs(replace(batch, memo={})))[:, j]
                row = dict(seen=start + len(batch), n_good=int(in_good.sum()), n_other=int((~in_good).sum()))
                for tag, dec in (("", decision), ("reference_", reference)):
                    chosen = np.asarray(dec.final) == j
                    row[f"{tag}newcomer_good"] = int(chosen[in_good].sum())
                    row[f"{tag}newcomer_other"] = int(chosen[~in_good].sum())
                    row[f"{tag}share_good"] = _share(chosen, in_good)
                    row[f"{tag}share_other"] = _share(chosen, ~in_good)
                row.update(phi_good=_masked_mean(phi, in_good), phi_other=_masked_mean(phi, ~in_good),
                           reference_phi_good=_masked_mean(ref_phi, in_good),
                           reference_phi_other=_masked_mean(ref_phi, ~in_good),
                           newcomer_verdicts=loop.log.per_model.get(name, 0), verdicts=loop.log.verdicts,
                           explored=loop.log.explored,
                           newcomer_pseudo_observations=float(table.pseudo(CATEGORY_AXES[0])[:, j].sum()),
                           judge_cost_usd=_mean([np.zeros(len(batch)) if decision.judge_cost is None
                                                 else np.asarray(decision.judge_cost, float)]),
                           stream_cost_usd=_mean([_total_cost(decision, batch)]))
                out.append(row)
            clock("stream")
            if self.evaluate and len(out) > 1:
                out[-1].update(s._evaluate(loop.method, points, test))
            clock("evaluate")
        self.timings[seed] = clock.seconds
        frame = pd.DataFrame(out)
        for col, value in (("newcomer", name), ("good_categories", " ".join(good)), ("seed", seed),
                           ("label_share", self.label_share), ("suite", h.suite.name)):
            frame.insert(0, col, value)
        return frame


class _Clock:
    """Seconds per phase (calls name the phase that just ended; repeated names add up)."""

    def __init__(self):
        import time

        self._now, self.seconds = time.perf_counter, {}
        self._last = self._now()

    def __call__(self, phase: str) -> None:
        now = self._now()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


def _share(chosen: np.ndarray, mask: np.ndarray) -> float:
    return float(chosen[mask].mean()) if mask.any() else float("nan")


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def queries_until(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (suite, seed): the reference's share of the newcomer in its good categories over the whole stream, the
    cold loop's over the last batch, and "queries until routed where it is good" (the module docstring's rule)."""
    out = []
    for (suite, seed), g in rows[rows["seen"] > 0].groupby(["suite", "seed"], sort=False):
        n_good = g["n_good"].sum()
        reference = g["reference_newcomer_good"].sum() / n_good if n_good else np.nan
        reached = g[g["share_good"] >= 0.5 * reference] if reference > 0 else g.iloc[:0]
        last = g.iloc[-1]
        out.append(dict(suite=suite, seed=seed, newcomer=last["newcomer"], streamed=int(last["seen"]),
                        reference_share_good=reference,
                        reference_share_other=g["reference_newcomer_other"].sum() / max(g["n_other"].sum(), 1),
                        share_good_last=last["share_good"], share_other_last=last["share_other"],
                        queries_until=float(reached["seen"].iloc[0]) if len(reached) else np.nan,
                        newcomer_verdicts=int(last["newcomer_verdicts"]), explored=int(last["explored"])))
    return pd.DataFrame(out)
