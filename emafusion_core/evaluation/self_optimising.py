"""The self-optimising experiment (online.py): fit on a small labelled slice of the fit split, stream the rest of
fit as unlabelled traffic through the loop, and report test accuracy, cost and AIQ as queries are seen, against
(a) the frozen system, (b) the same loop with the same paid answers but the true scores instead of verdicts
(the ceiling), (c) the system fitted on all of fit with labels. Calibrate stays labelled and chooses the
operating points once, before the stream; test is read here, by the evaluation, and only to report.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd

from ..execution import stable_rng
from ..frontier import aiq, cost_range_too_narrow
from ..calibration import default_budgets
from ..online import SelfOptimiser
from .emafusion import fitted_method
from .harness import Harness, holdout_groups, holdout_plan
from .metrics import mean_ci_over_seeds

ARMS = ("frozen", "verdicts", "ceiling (true scores)", "all of fit labelled")


def _subview(view, idx, split: str):
    queries = [view.queries[i] for i in idx]
    emb = None if view.embeddings is None else view.embeddings[np.asarray(idx, int)]
    return type(view)(queries, emb, suite=view.suite, split=split, seed=view.seed, executor=view.executor,
                      model_names=list(view.model_names))


class StreamExperiment:
    """One suite: `run(seed, label_share)` gives the rows of one (seed, slice); hyperparameters of the loop and
    of the experiment here. batch_size: queries per update; n_checkpoints: test evaluations along the stream."""

    def __init__(self, harness: Harness, batch_size: int = 100, n_checkpoints: int = 4, n_budgets: int = 6,
                 weight: float = 1.0, cap: float = 1.0, explore_share: float = 0.05, max_stream: int | None = None,
                 report_on: str = "test", recalibrate: bool = False):
        """max_stream: at most this many streamed queries (bounds the run on large suites); report_on: the split
        reported ('test'; 'calibrate' while developing, so that test is read once); recalibrate: re-choose the
        knobs on calibrate at each checkpoint (default off: the knobs stay as calibrate chose them before the
        stream, as in `serve`, where no labels arrive; on costs one calibrate sweep per arm and checkpoint)."""
        if report_on not in ("test", "calibrate"):
            raise ValueError("report_on must be 'test' or 'calibrate'")
        self.report_on, self.recalibrate = report_on, recalibrate
        self._references: dict = {}
        self._starts: dict = {}
        self.harness, self.batch_size, self.n_checkpoints, self.n_budgets = harness, batch_size, n_checkpoints, n_budgets
        self.weight, self.cap, self.explore_share, self.max_stream = weight, cap, explore_share, max_stream

    def slices(self, seed: int, label_share: float, n_fit: int) -> tuple[np.ndarray, np.ndarray]:
        """(labelled, stream): positions in fit of the labelled slice and of the streamed queries (seeded; the
        stream at most max_stream long). The cold-start experiment (cold_start.py) uses the same."""
        order = stable_rng(self.harness.suite.name, seed, "self-optimising", label_share).permutation(n_fit)
        n_lab = max(20, int(round(label_share * n_fit)))
        labelled, stream = order[:n_lab], order[n_lab:]
        return labelled, (stream if self.max_stream is None else stream[: self.max_stream])

    def _points(self, method, cal, panel: tuple | None = None):
        """The operating points calibrate chooses per budget, and the middle one (what the stream runs at);
        panel: keep this panel (a re-calibration along the stream re-chooses the knobs, not the judges)."""
        data = self.harness.fit_data(cal)
        single = data.mean_cost
        budgets = default_budgets(float(single.min()), float(single.max()), self.n_budgets)
        points = method.calibrate(data, "hybrid", True, budgets=budgets, panels=None if panel is None else [panel])
        return points, points[len(points) // 2]

    @staticmethod
    def _panel_of(points) -> tuple:
        """The judges calibrate chose (a cascade point's panel; the verifier when every point is router-alone)."""
        return next((tuple(p.panel) for p in points if p.cascade and p.panel), ("verifier",))

    def _reference(self, seed: int, fit, cal, test) -> dict:
        """The system fitted on all of fit with labels, calibrated as the others (once per seed)."""
        key = (seed, self.report_on)
        if key not in self._references:
            full = fitted_method(self.harness.fit_data(fit))
            self._references[key] = self._evaluate(full, self._points(full, cal)[0], test)
        return self._references[key]

    def _start(self, seed: int, label_share: float, fit, cal, test, labelled) -> tuple:
        """The system fitted on the labelled slice, its calibrated points and its frozen evaluation: the same for
        the random and the blocks stream of one (seed, share), so computed once."""
        key = (seed, float(label_share), self.report_on)
        if key not in self._starts:
            base = fitted_method(self.harness.fit_data(_subview(fit, labelled, "fit")))
            if getattr(base, "taxonomy_router_", None) is None:
                raise ValueError(f"{self.harness.suite.name}: no taxonomy labels in fit, so no suitability table to "
                                 "update")
            points, stream_point = self._points(base, cal)
            self._starts[key] = base, points, stream_point, self._evaluate(base, points, test)
        return self._starts[key]

    def _evaluate(self, method, points, test) -> dict:
        scorer = self.harness.scorer
        rows = scorer.rows(test.query_ids)
        seen, acc, cost = {}, [], []
        batch = replace(test, memo={})  # one memo for this method's points (what they share: features, verdicts)
        for p in points:
            key = replace(p, budget_usd=None)
            if key not in seen:
                decision = method.decide(batch, test.executor, p)[0]
                outcome = scorer.score(None, decision, rows=rows)
                seen[key] = (float(outcome.accuracy.mean()), float(outcome.cost.mean()))
            a, c = seen[key]
            acc.append(a)
            cost.append(c)
        single = scorer.costs(test.query_ids).mean(axis=0)
        lo, hi = float(single.min()), float(single.max())
        value = np.nan if cost_range_too_narrow(lo, hi) else aiq(cost, acc, lo, hi)
        mid = len(points) // 2
        return dict(aiq=value, accuracy=acc[mid], cost_usd=cost[mid], best_accuracy=max(acc))

    def run(self, seed: int, label_share: float, drift: bool = False) -> pd.DataFrame:
        """drift: the stream arrives in blocks of one group at a time (benchmarks, or taxonomy domains for a
        one-benchmark suite), so its mix of task types changes along the way; else in a seeded random order."""
        h = self.harness
        with h.limits():
            views = h.views(seed)
            fit, cal, test = views["fit"], views["calibrate"], views[self.report_on]
            labelled, stream = self.slices(seed, label_share, len(fit))
            if drift:
                by, _ = holdout_plan(h.suite)
                group = holdout_groups(h.suite, by or "benchmark")
                stream = np.array(sorted(stream, key=lambda i: group[fit.queries[i].query_id]), int)
            base, points, stream_point, frozen = self._start(seed, label_share, fit, cal, test, labelled)
            out = []
            full_row = self._reference(seed, fit, cal, test)
            scores = h.scorer

            def truth(batch, rows, models, conf):
                return scores.scores(batch.query_ids)[rows, models]

            panel = self._panel_of(points)
            loops = {arm: (SelfOptimiser(copy.deepcopy(base), stream_point, self.weight, self.cap, self.explore_share,
                                         seed, panel=panel), feedback)
                     for arm, feedback in (("verdicts", None), ("ceiling (true scores)", truth))}
            bs = self.batch_size
            marks = np.linspace(0, len(stream), self.n_checkpoints + 1)
            marks = sorted({min(len(stream), int(np.ceil(m / bs) * bs)) for m in marks})
            stream_cost = {arm: [] for arm in (*loops, "frozen")}
            start = 0
            for mark in marks:
                while start < mark:
                    batch = _subview(fit, stream[start:start + bs], "stream")
                    for arm, (loop, feedback) in loops.items():
                        decision = loop.observe(replace(batch, memo={}), fit.executor, feedback)
                        stream_cost[arm].append(_total_cost(decision, batch))
                    decision = base.decide(replace(batch, memo={}), fit.executor, stream_point)[0]
                    stream_cost["frozen"].append(_total_cost(decision, batch))
                    start += bs
                seen = min(start, len(stream))
                for arm, (loop, _) in loops.items():
                    # calibrate stays labelled; with recalibrate, the knobs are re-chosen for the updated table
                    arm_points, loop.point = (self._points(loop.method, cal, panel) if seen and self.recalibrate
                                              else (points, loop.point))
                    out.append(dict(arm=arm, seen=seen, **self._evaluate(loop.method, arm_points, test),
                                    pseudo_observations=loop.log.pseudo_observations,
                                    explored=loop.log.explored, stream_cost_usd=_mean(stream_cost[arm])))
                out.append(dict(arm="frozen", seen=seen, **frozen, stream_cost_usd=_mean(stream_cost["frozen"])))
                out.append(dict(arm="all of fit labelled", seen=seen, **full_row))
        frame = pd.DataFrame(out)
        frame.insert(0, "stream", "blocks" if drift else "random")
        frame.insert(0, "label_share", label_share)
        frame.insert(0, "seed", seed)
        frame.insert(0, "suite", h.suite.name)
        return frame


def _total_cost(decision, batch) -> np.ndarray:
    """USD per streamed query: the models run plus the judges (exploration included), from recorded costs."""
    cost = batch.executor.recorded_arrays(batch.query_ids, batch.model_names)[1]
    model = (cost * decision.ran_mask(cost.shape[1])).sum(axis=1)
    judge = np.zeros(len(batch)) if decision.judge_cost is None else np.asarray(decision.judge_cost, float)
    return model + judge


def _mean(chunks: list) -> float:
    return float(np.concatenate(chunks).mean()) if chunks else float("nan")


def gain_table(rows: pd.DataFrame, metric: str = "aiq") -> pd.DataFrame:
    """Per suite, stream order and label share: the loop's `metric` after the whole stream minus the frozen
    system's, per seed, with its mean and 95% CI over seeds (and the ceiling's, for the same paid answers)."""
    keys = ["suite", "stream", "label_share"]
    last = rows[rows["seen"] == rows.groupby([*keys, "seed"])["seen"].transform("max")]
    wide = last.pivot_table(index=[*keys, "seed"], columns="arm", values=metric)
    streamed = last.groupby(keys)["seen"].max()
    out = []
    for (suite, stream, share), g in wide.groupby(level=[0, 1, 2]):
        for arm in ("verdicts", "ceiling (true scores)", "all of fit labelled"):
            diff = (g[arm] - g["frozen"]).to_numpy(float)
            ci = mean_ci_over_seeds(diff)
            out.append(dict(suite=suite, stream=stream, label_share=share, arm=arm, metric=metric, gain=ci.estimate,
                            ci_low=ci.low, ci_high=ci.high, n_seeds=len(diff),
                            streamed=int(streamed[(suite, stream, share)])))
    return pd.DataFrame(out)


CLAIM = "self-optimising: AIQ after the stream minus frozen"


def self_optimising_claims(gains: pd.DataFrame, label_share: float) -> pd.DataFrame:
    """The claims-table rows (one per suite) at one labelled share: "holds" when the 95% CI over seeds lies
    above 0, "does not hold" below, else "inconclusive" (claims.verdict; the paper gives no number)."""
    from .claims import COLUMNS, verdict

    rows = []
    pick = (gains["arm"] == "verdicts") & (gains["stream"] == "random") & np.isclose(gains["label_share"], label_share)
    for r in gains[pick].itertuples():
        rows.append((r.suite, CLAIM, np.nan, r.gain, r.ci_low, r.ci_high, verdict(r.ci_low, r.ci_high, 0.0),
                     f"fit on {label_share:.0%} of fit with labels, then {r.streamed} more fit queries streamed "
                     f"unlabelled; test AIQ of the loop minus the frozen system, per seed ({r.n_seeds} seeds)"))
    return pd.DataFrame(rows, columns=COLUMNS)
