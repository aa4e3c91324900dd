"""The harness: every baseline on the same splits of one suite, over seeds, as tidy tables.

Per seed: split the suite; build what policies may see (SplitViews: texts, embeddings, a ReplayExecutor);
fit each policy on fit; choose its hyper and per-budget knob on calibrate; run each chosen setting once on
test. Only the Scorer reads scores: for fit labels, for calibrate choices, for the final test numbers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..data.splits import DEFAULT_SEEDS, make_splits, split_ids
from ..data.suite import Suite
from ..features.encoders import Encoder
from .baselines import (AutoMix, KNNRouter, MLPRouter, Oracle, RandomRouter, RouteLLMRouter, SingleModel,
                        ThresholdCascade, ZeroRouter)
from .baselines.base import Policy, PolicyUnavailable
from ..frontier import cost_range_too_narrow
from .budget import calibrate_budgets, choose_hyper, default_budgets, evaluate_on_test
from .context import FitData, SplitView
from ..execution import ReplayExecutor
from .replay import Outcome, Scorer, queries_of


def default_policies(suite: Suite, scorer: Scorer, with_embeddings: bool = True) -> list[Policy]:
    """evaluation.md's baselines, in its order; the embedding routers only when an encoder is given."""
    policies: list[Policy] = [SingleModel(m) for m in suite.model_names]
    policies += [ZeroRouter(), RandomRouter(), Oracle(scorer)]
    if with_embeddings:
        policies += [KNNRouter(), MLPRouter()]
    policies += [ThresholdCascade(), ThresholdCascade(per_stage=False, name="threshold-cascade"), AutoMix()]
    if with_embeddings:
        policies.append(RouteLLMRouter())
    return policies


@dataclass
class PolicyRun:
    """One policy on one seed: its test rows, its calibrate sweep, and per-query test outcomes per setting."""

    policy: str
    seed: int
    rows: pd.DataFrame
    calibrate: pd.DataFrame
    outcomes: dict[int, Outcome]
    info: dict = field(default_factory=dict)


@dataclass
class HarnessResult:
    suite: str
    model_names: list[str]
    runs: list[PolicyRun]
    timings: dict = field(default_factory=dict)  # wall-clock seconds: printed, never written (reruns must match)
    unavailable: dict = field(default_factory=dict)  # policy -> why it could not run on this suite (no rows)
    notices: list = field(default_factory=list)  # what a reader must know (e.g. accuracy only: no cost axis)

    @property
    def points(self) -> pd.DataFrame:
        """Tidy test rows: one per (policy, seed, budget); single models and the oracle have no budget."""
        return pd.concat([r.rows for r in self.runs], ignore_index=True)

    @property
    def calibrate(self) -> pd.DataFrame:
        return pd.concat([r.calibrate for r in self.runs], ignore_index=True)

    def run_of(self, policy: str, seed: int) -> PolicyRun:
        return next(r for r in self.runs if r.policy == policy and r.seed == seed)


def holdout_groups(suite: Suite, by: str) -> dict[str, str]:
    """query_id -> its group for the out-of-distribution check: the benchmark, or the taxonomy domain the
    documented labelling rules give from the query's metadata (no score is read)."""
    if by == "benchmark":
        return dict(zip(suite.queries["query_id"], suite.queries["benchmark"]))
    from ..method import fit_labels

    queries = queries_of(suite, suite.query_ids)
    return dict(zip(suite.query_ids, fit_labels(queries)[by].astype(str)))


def holdout_plan(suite: Suite) -> tuple[str | None, list[str]]:
    """What the out-of-distribution check holds out, one group at a time: the benchmarks when there are two or
    more, else the taxonomy domains when there are two or more, else nothing (None, [])."""
    for by in ("benchmark", "domain"):
        groups = sorted(set(holdout_groups(suite, by).values()) - {"nan", "None"})
        if len(groups) > 1:
            return by, groups
    return None, []


class Harness:
    """Runs policies over seeds on one suite. `encoder` (may be a CachedEncoder) embeds query texts once."""

    def __init__(self, suite: Suite, encoder: Encoder | None = None, seeds: Sequence[int] = DEFAULT_SEEDS,
                 policies: Callable[[Suite, Scorer], list[Policy]] | None = None, n_budgets: int = 25,
                 scorer: Scorer | None = None, blas_threads: int = 1, holdout: str | None = None,
                 holdout_by: str = "benchmark"):
        """holdout: a group left out of fit and calibrate (the out-of-distribution check); holdout_by: what a
        group is, "benchmark" or "domain" (the taxonomy domain the labelling rules give, for a one-benchmark
        suite such as MMLU-Pro's subjects)."""
        if holdout_by not in ("benchmark", "domain"):
            raise ValueError(f"holdout_by must be 'benchmark' or 'domain', not {holdout_by!r}")
        self.blas_threads, self.holdout, self.holdout_by = blas_threads, holdout, holdout_by
        self.suite, self.encoder, self.seeds, self.n_budgets = suite, encoder, list(seeds), n_budgets
        self.scorer = scorer or Scorer(suite)
        self.executor = ReplayExecutor.for_suite(suite)
        self.make_policies = policies or (lambda s, sc: default_policies(s, sc, with_embeddings=encoder is not None))
        self._queries = dict(zip(suite.query_ids, queries_of(suite, suite.query_ids)))
        self._emb = None
        if encoder is not None:
            t0 = time.perf_counter()
            vectors = encoder.encode([self._queries[q].text for q in suite.query_ids])
            self._emb = pd.Series(range(len(vectors)), index=suite.query_ids), vectors
            self.embed_seconds = time.perf_counter() - t0

    def views(self, seed: int) -> dict[str, SplitView]:
        """fit / calibrate / test views of one seed. With `holdout` (a benchmark or domain), the
        out-of-distribution check: that group is left out of fit and calibrate, and test holds only its
        test-split queries."""
        splits = make_splits(self.suite.queries, self.suite.name, seed)
        group = holdout_groups(self.suite, self.holdout_by) if self.holdout is not None else {}
        if self.holdout is not None and self.holdout not in set(group.values()):
            raise ValueError(f"unknown {self.holdout_by} {self.holdout!r} to hold out")
        out = {}
        for part in ("fit", "calibrate", "test"):
            ids = list(split_ids(splits, part))
            if self.holdout is not None:
                ids = [q for q in ids if (group[q] == self.holdout) == (part == "test")]
            emb = None if self._emb is None else self._emb[1][self._emb[0].loc[ids].to_numpy()]
            out[part] = SplitView([self._queries[q] for q in ids], emb, suite=self.suite.name, split=part, seed=seed,
                                  executor=self.executor, model_names=list(self.suite.model_names))
        return out

    def fit_data(self, fit: SplitView) -> FitData:
        """The fit split's training set: its labels (a failed call scores 0 and is flagged) and families."""
        ids = fit.query_ids
        return FitData(fit, self.scorer.scores(ids), self.scorer.costs(ids), self.scorer.failed(ids),
                       families=dict(zip(self.suite.models["model"], self.suite.models["family"])))

    def limits(self):
        """A context in which fits and sweeps run with `blas_threads` BLAS threads: the matrices are small, and
        oversubscribed threads made sklearn fits 30x slower. Everything that fits on this harness's splits
        (run, the judge diagnostics, the budget explorer) runs inside it."""
        return threadpool_limits(limits=self.blas_threads)

    def run(self) -> HarnessResult:
        result = HarnessResult(self.suite.name, list(self.suite.model_names), [])
        t0 = time.perf_counter()
        with self.limits():
            for seed in self.seeds:
                result.runs += self.run_seed(seed, result.timings, result)
        result.timings["total"] = time.perf_counter() - t0
        return result

    @staticmethod
    def _notice(result: HarnessResult | None, text: str) -> None:
        """Print a notice once per run (and keep it on the result)."""
        if result is not None and text in result.notices:
            return
        print(f"notice: {text}", flush=True)
        if result is not None:
            result.notices.append(text)

    def run_seed(self, seed: int, timings: dict | None = None, result: HarnessResult | None = None) -> list[PolicyRun]:
        """The policies on one seed. A policy that cannot run on this suite (PolicyUnavailable) is reported in
        result.unavailable with a printed notice and gives no rows; the others run."""
        timings = {} if timings is None else timings
        views = self.views(seed)
        fit, cal, test = views["fit"], views["calibrate"], views["test"]
        data = self.fit_data(fit)
        cal_single = self.scorer.costs(cal.query_ids).mean(axis=0)
        c_range = (float(cal_single.min()), float(cal_single.max()))
        budgets = default_budgets(*c_range, self.n_budgets)
        if cost_range_too_narrow(*c_range):
            # no budget axis: one unbounded budget, i.e. each policy's setting with the best calibrate accuracy
            budgets = np.array([np.inf])
            self._notice(result, f"{self.suite.name}: the single models' mean cost spans only "
                                 f"[{c_range[0]:.4g}, {c_range[1]:.4g}] USD/query on calibrate (equal prices?): no "
                                 f"budget axis; each policy is evaluated on accuracy at its best calibrate setting "
                                 f"(budget_usd = inf); AIQ and nAUC are not defined")
        runs = []
        for policy in self.make_policies(self.suite, self.scorer):
            t0 = time.perf_counter()
            try:
                runs.append(self.run_policy(policy, data, cal, test, budgets, c_range))
            except PolicyUnavailable as exc:
                if result is not None:
                    result.unavailable.setdefault(policy.name, str(exc))
                self._notice(result, f"{policy.name} unavailable on {self.suite.name}: {exc}")
                continue
            timings.setdefault(policy.name, 0.0)
            timings[policy.name] += time.perf_counter() - t0
        return runs

    def run_policy(self, policy: Policy, data: FitData, cal: SplitView, test: SplitView, budgets,
                   c_range) -> PolicyRun:
        policy.fit(data, cal)
        chosen_sweep = choose_hyper(policy, cal, self.scorer, c_range)
        sweep_table = chosen_sweep.table()
        single_setting = len(chosen_sweep.knobs) == 1
        chosen = calibrate_budgets(chosen_sweep, budgets[:1] if single_setting else budgets)
        if single_setting:
            chosen["budget_usd"] = np.nan
        t0 = time.perf_counter()
        outcomes = evaluate_on_test(policy, test, chosen_sweep, chosen["knob_index"], self.scorer)
        test_seconds = time.perf_counter() - t0
        summaries = {i: o.summary(self.suite.model_names) for i, o in outcomes.items()}
        test_rows = pd.DataFrame([summaries[i] for i in chosen["knob_index"]])
        rows = pd.concat([chosen.reset_index(drop=True), test_rows], axis=1)
        rows["over_budget"] = rows["cost_usd"] > rows["budget_usd"]
        hyper = policy.describe(chosen_sweep.hyper)
        rows.insert(0, "suite", self.suite.name)
        rows.insert(1, "policy", policy.name)
        rows.insert(2, "seed", test.seed)
        rows.insert(3, "split", "test")
        rows.insert(4, "hyper", hyper)
        rows.insert(5, "knob_name", policy.knob_name)
        rows["reads_scores"] = policy.reads_scores
        sweep_table.insert(0, "suite", self.suite.name)
        sweep_table.insert(1, "policy", policy.name)
        sweep_table.insert(2, "seed", test.seed)
        sweep_table.insert(3, "split", "calibrate")
        sweep_table.insert(4, "hyper", hyper)
        info = {"test_seconds_per_setting": test_seconds / max(len(outcomes), 1)}
        for attr in ("pair", "large", "strong", "weak"):
            if hasattr(policy, attr):
                info[attr] = getattr(policy, attr)
        if isinstance(policy, AutoMix):
            info["small"] = chosen_sweep.hyper
        if hasattr(chosen_sweep.knobs[0], "to_dict"):  # operating points travel: kept per budget for export
            info["operating_points"] = [(float(b), chosen_sweep.knobs[int(i)])
                                        for b, i in zip(chosen["budget_usd"], chosen["knob_index"])]
        return PolicyRun(policy.name, test.seed, rows, sweep_table, outcomes, info)
