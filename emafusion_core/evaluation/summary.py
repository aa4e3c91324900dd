"""Curve scalars of a HarnessResult: per (policy, seed) on test, then one row per policy over seeds.

Every AIQ and normalised AUC of a seed uses the same range for all policies: [cheapest, dearest] single
model's test USD/query of that seed. Where an AIQ is not defined it is NaN and the `note` column says why: a
suite whose models cost the same has no cost range (accuracy only), and a policy whose every setting costs at
least the dearest single model has no part of its frontier inside the range (RouterBench's convention would
print 0 for it). CIs: `*_ci_low/high` are a Student-t interval of the mean over seeds;
`*_boot_low/high` are the mean over seeds of each seed's bootstrap (over test queries) percentile bounds.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from .harness import HarnessResult, PolicyRun
from ..frontier import cost_range_too_narrow
from .metrics import (CI, aiq, aiq_batched, apgr, bootstrap_curve_ci, cpt, ibc_lift, max_gain, mean_ci_over_seeds,
                      ndch_batched, normalised_auc, normalised_auc_batched, paired_bootstrap, zero_router_hull)

ZERO_HULL = "zero-router hull (test)"
NO_COST_AXIS = "accuracy only: the single models' costs span no range (equal prices), so AIQ and nAUC are not defined"
AT_DEAREST = ("AIQ not defined: every setting costs at least the dearest single model's USD/query, where the AIQ "
              "range ends (its frontier has no part inside it)")
_NAN_CI = CI(np.nan, np.nan, np.nan)


def _per_query(run: PolicyRun) -> tuple[np.ndarray, np.ndarray]:
    """(n_queries, n_points) accuracy and USD of every distinct setting the policy ran on test."""
    keys = sorted(run.outcomes)
    return (np.stack([run.outcomes[k].accuracy for k in keys], axis=1),
            np.stack([run.outcomes[k].cost for k in keys], axis=1))


def _largest_budget_point(run: PolicyRun) -> int:
    """Position (in sorted knob order, as _per_query) of the setting chosen for the run's largest budget."""
    rows = run.rows
    index = int(rows["knob_index"].iloc[int(np.argmax(rows["budget_usd"].fillna(-np.inf).to_numpy()))])
    return sorted(run.outcomes).index(index)


def _hull_nauc(costs, qualities, c_lo, c_hi):
    """nAUC of the zero-router hull: the normalised AUC of the knots of the single models' NDCH."""
    return normalised_auc(*zero_router_hull(costs, qualities), c_lo, c_hi)


def _hull_nauc_batched(costs, qualities, c_lo, c_hi):
    """_hull_nauc of each row: the padded knots of ndch_batched repeat the last one, which adds no area."""
    return normalised_auc_batched(*ndch_batched(costs, qualities), c_lo, c_hi)


def seed_metrics(result: HarnessResult, n_boot: int = 1000, batched: bool = True) -> pd.DataFrame:
    """One row per (policy, seed) plus the zero-router hull (module docstring). batched=False calls the scalar
    AIQ / nAUC once per bootstrap resample instead of once for all of them: the same numbers (to rounding),
    some 30 times slower; kept as the reference the batched path is tested and benchmarked against
    (tests/test_metrics.py, benchmarks/bench_summary.py)."""
    rows = []
    for seed in sorted({r.seed for r in result.runs}):
        runs = [r for r in result.runs if r.seed == seed]
        singles = {r.policy.split(":", 1)[1]: r for r in runs if r.policy.startswith("single:")}
        s_acc = np.concatenate([_per_query(singles[m])[0] for m in result.model_names], axis=1)
        s_cost = np.concatenate([_per_query(singles[m])[1] for m in result.model_names], axis=1)
        q_single, c_single = s_acc.mean(0), s_cost.mean(0)
        c_min, c_max = float(c_single.min()), float(c_single.max())
        hull = zero_router_hull(c_single, q_single)
        oracle = next((r for r in runs if r.rows["reads_scores"].any()), None)
        q_oracle = float(_per_query(oracle)[0].mean(0).max()) if oracle is not None else np.nan
        f_aiq = partial(aiq_batched if batched else aiq, c_min=c_min, c_max=c_max)
        f_nauc = partial(normalised_auc_batched if batched else normalised_auc, c_lo=c_min, c_hi=c_max)
        f_hull = partial(_hull_nauc_batched if batched else _hull_nauc, c_lo=c_min, c_hi=c_max)
        boot = partial(bootstrap_curve_ci, n_boot=n_boot, seed=seed, batched=batched)
        entries = [(r.policy, *_per_query(r), f_nauc, r) for r in runs]
        entries.append((ZERO_HULL, s_acc, s_cost, f_hull, None))
        no_axis = cost_range_too_narrow(c_min, c_max)
        for policy, acc, cost, f_auc, run in entries:
            q, c = acc.mean(0), cost.mean(0)
            note = NO_COST_AXIS if no_axis else (AT_DEAREST if float(c.min()) >= c_max * (1 - 1e-9) else "")
            wanted = {} if no_axis else {"nauc": f_auc} | ({} if note else {"aiq": f_aiq})
            cis = dict(zip(wanted, boot(acc, cost, tuple(wanted.values())))) if wanted else {}  # same resamples
            a_ci, n_ci = cis.get("aiq", _NAN_CI), cis.get("nauc", _NAN_CI)
            # "best" = the setting chosen on calibrate for the largest budget, never an argmax over test
            best = _largest_budget_point(run) if run is not None else int(np.argmax(c))
            row = dict(suite=result.suite, policy=policy, seed=seed, c_min=c_min, c_max=c_max, n_points=len(q),
                       aiq=a_ci.estimate, aiq_boot_low=a_ci.low, aiq_boot_high=a_ci.high,
                       nauc=n_ci.estimate, nauc_boot_low=n_ci.low, nauc_boot_high=n_ci.high,
                       max_gain=max_gain(c, q, hull), best_accuracy=float(q[best]), cost_at_best=float(c[best]),
                       oracle_gap=q_oracle - float(q[best]),
                       reads_scores=bool(run is not None and run.rows["reads_scores"].any()),
                       hyper=run.rows["hyper"].iloc[0] if run is not None else "", note=note)
            row.update(_pair_metrics(run, result.model_names, q, c, singles))
            rows.append(row)
    return pd.DataFrame(rows)


def _pair_metrics(run: PolicyRun | None, names, q, c, singles) -> dict:
    """APGR / CPT(50%) for the binary router, IBC lift for AutoMix (evaluation.md, binary pairs)."""
    out = dict(apgr=np.nan, cpt50=np.nan, ibc_lift=np.nan)
    if run is None:
        return out
    single_q = {m: float(singles[m].rows["accuracy"].iloc[0]) for m in singles}
    single_c = {m: float(singles[m].rows["cost_usd"].iloc[0]) for m in singles}
    if "pair" in run.info:
        weak, strong = run.info["pair"]
        if single_q[strong] != single_q[weak]:
            keys = sorted(run.outcomes)
            share = np.array([np.mean(run.outcomes[k].final == names.index(strong)) for k in keys])
            out["apgr"] = apgr(share, q, single_q[weak], single_q[strong])
            out["cpt50"] = cpt(share, q, single_q[weak], single_q[strong], 0.5)
    if "small" in run.info and "large" in run.info:
        small, large = names[run.info["small"]], names[run.info["large"]]
        inside = (c > single_c[small]) & (c < single_c[large])
        if inside.any() and single_q[large] != single_q[small]:
            lifts = ibc_lift(q[inside], c[inside], single_q[small], single_c[small], single_q[large], single_c[large])
            out["ibc_lift"] = float(np.mean(lifts))
    return out


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per policy: mean over seeds with t-intervals, mean bootstrap bounds, and the other scalars."""
    rows = []
    for policy, g in per_seed.groupby("policy", sort=False):
        row = dict(suite=g["suite"].iloc[0], policy=policy, n_seeds=len(g))
        for metric in ("aiq", "nauc"):
            finite = g[metric][np.isfinite(g[metric].to_numpy(float))]
            ci = mean_ci_over_seeds(finite) if len(finite) else _NAN_CI
            row.update({metric: ci.estimate, f"{metric}_ci_low": ci.low, f"{metric}_ci_high": ci.high,
                        f"{metric}_boot_low": g[f"{metric}_boot_low"].mean(),
                        f"{metric}_boot_high": g[f"{metric}_boot_high"].mean()})
        for col in ("max_gain", "best_accuracy", "cost_at_best", "oracle_gap", "apgr", "cpt50", "ibc_lift",
                    "c_min", "c_max"):
            row[col] = g[col].mean() if g[col].notna().any() else np.nan
        row["reads_scores"] = bool(g["reads_scores"].any())
        row["hyper"] = g["hyper"].mode().iloc[0] if len(g) else ""
        notes = [n for n in dict.fromkeys(g["note"].fillna("")) if n] if "note" in g.columns else []
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)


def with_unavailable(summary: pd.DataFrame, result: HarnessResult) -> pd.DataFrame:
    """The summary with one marked row per policy that could not run on the suite (metrics NaN, `note` saying
    why), so a table written to disk shows it was left out rather than silently missing."""
    if not result.unavailable:
        return summary
    extra = pd.DataFrame([dict(suite=result.suite, policy=p, n_seeds=0, reads_scores=False, hyper="",
                               note=f"unavailable: {why}") for p, why in result.unavailable.items()])
    return pd.concat([summary, extra], ignore_index=True)


def format_table(summary: pd.DataFrame) -> str:
    """The printed comparison: AIQ and normalised AUC with seed CIs, accuracy at the largest budget (the
    setting chosen on calibrate for it), gap to the oracle."""
    lines = [f"{'policy':<44} {'AIQ [95% CI over seeds]':>26} {'nAUC [95% CI over seeds]':>26} "
             f"{'max gain':>9} {'acc@maxB':>9} {'oracle gap':>10}"]
    notes: dict[str, str] = {}

    def ci(value, low, high) -> str:
        if not np.isfinite(value):
            return f"{'n/a':>8} {'':16}"
        return f"{value:>8.4f} [{low:.4f}, {high:.4f}]" if np.isfinite(low) else f"{value:>8.4f} {'':16}"

    for r in summary.itertuples():
        note = getattr(r, "note", "") or ""
        mark = ""
        if note:
            mark = notes.setdefault(note, "*" * (len(notes) + 1))
        label = r.policy + ("  <- reads scores" if r.reads_scores else "") + (f" {mark}" if mark else "")
        lines.append(f"{label:<44} {ci(r.aiq, r.aiq_ci_low, r.aiq_ci_high)} {ci(r.nauc, r.nauc_ci_low, r.nauc_ci_high)} "
                     f"{r.max_gain:>+9.4f} {r.best_accuracy:>9.4f} {r.oracle_gap:>10.4f}")
    lines += [f"{mark} {note}" for note, mark in notes.items()]
    return "\n".join(lines)


def format_details(result: HarnessResult, summary: pd.DataFrame) -> str:
    """Per policy at its largest budget (mean over seeds): accuracy, USD/query, judge calls and share of cost,
    the most used model and its share, routing time per query (wall clock: printed, never written), and the
    binary-pair scalars (APGR, CPT(50%) for RouteLLM; IBC lift for AutoMix)."""
    points = result.points
    last = points.sort_values("budget_usd", na_position="first").groupby(["policy", "seed"], sort=False).tail(1)
    shares = [c for c in points.columns if c.startswith("share:")]
    lines = [f"{'policy (largest budget)':<44} {'acc':>7} {'USD/query':>10} {'judge/q':>8} {'judge $%':>8} "
             f"{'us/query':>9}  most used model (share); binary-pair scalars"]
    latency = {}
    for run in result.runs:
        n = len(next(iter(run.outcomes.values())).accuracy)
        latency.setdefault(run.policy, []).append(run.info.get("test_seconds_per_setting", np.nan) / n * 1e6)
    extra = summary.set_index("policy")
    groups = dict(list(last.groupby("policy", sort=False)))
    for policy in [p for p in summary["policy"] if p in groups]:
        g = groups[policy]
        mean_shares = g[shares].mean()
        top = mean_shares.idxmax()
        note = f"{top.split(':', 1)[1]} ({mean_shares.max():.2f})"
        row = extra.loc[policy]
        if np.isfinite(row["apgr"]):
            note += f"; APGR {row['apgr']:.3f}, CPT(50%) {row['cpt50']:.3f}"
        if np.isfinite(row["ibc_lift"]):
            note += f"; IBC lift {row['ibc_lift']:+.3f}"
        lines.append(f"{policy:<44} {g['accuracy'].mean():>7.4f} {g['cost_usd'].mean():>10.6f} "
                     f"{g['judge_calls'].mean():>8.2f} {100 * g['judge_share_of_cost'].mean():>7.1f}% "
                     f"{np.mean(latency[policy]):>9.1f}  {note}")
    return "\n".join(lines)


def _at_budget(run: PolicyRun, budget: float | None):
    """The outcome a run reported for a budget: its row with the largest budget <= B (the last row if None)."""
    rows = run.rows
    if budget is not None and rows["budget_usd"].notna().any():
        within = rows[rows["budget_usd"] <= budget * (1 + 1e-9)]
        rows = within if len(within) else rows.iloc[:1]
    return run.outcomes[int(rows["knob_index"].iloc[-1])]


def paired_comparison(result: HarnessResult, policy_a: str, policy_b: str, budget: float | None = None,
                      n_boot: int = 1000) -> pd.DataFrame:
    """Per seed, policy a minus policy b on the same test queries at the same budget: accuracy and USD/query
    differences with paired bootstrap CIs and p-values (resampling whole queries keeps their correlation)."""
    rows = []
    for seed in sorted({r.seed for r in result.runs}):
        a, b = _at_budget(result.run_of(policy_a, seed), budget), _at_budget(result.run_of(policy_b, seed), budget)
        acc = paired_bootstrap(a.accuracy, b.accuracy, n_boot=n_boot, seed=seed)
        usd = paired_bootstrap(a.cost, b.cost, n_boot=n_boot, seed=seed)
        rows.append(dict(suite=result.suite, a=policy_a, b=policy_b, seed=seed, budget_usd=budget,
                         accuracy_diff=acc.diff, accuracy_low=acc.low, accuracy_high=acc.high, accuracy_p=acc.p_value,
                         cost_diff=usd.diff, cost_low=usd.low, cost_high=usd.high, cost_p=usd.p_value))
    return pd.DataFrame(rows)
