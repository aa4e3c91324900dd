"""One function per figure: data in, matplotlib Figure out. No computation of results here.

Colours are fixed per name (model or policy) across every figure, so a reader can follow a model
from the models table to the frontier.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

# No backend is chosen here: in a notebook kernel (JupyterLab, papermill) the inline backend shows and keeps
# the figures; a script without a display falls back to Agg by itself (or set MPLBACKEND=Agg).
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

_PALETTE = sns.color_palette("tab20", 20)
matplotlib.rcParams["svg.hashsalt"] = "emafusion"  # deterministic SVG ids: reruns give identical files


# Policies the README names get fixed, distinct colours; any other name (a model, a user's policy) gets a
# colour from its hash, the same in every figure.
_FIXED = dict(zip(
    ["emafusion:hybrid+cascade", "emafusion:hybrid", "emafusion:learned+cascade", "emafusion:learned",
     "emafusion:taxonomy+cascade", "emafusion:taxonomy", "knn", "mlp", "frugal-cascade", "threshold-cascade",
     "automix", "routellm", "zero-router", "zero-router hull (test)", "random", "oracle (ceiling)"],
    ["#d62728", "#ff9896", "#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#8c564b",
     "#c49c94", "#e377c2", "#bcbd22", "#7f7f7f", "#c7c7c7", "#dbdb8d", "#000000"]))


def color_for(name: str):
    """A stable colour for a model or policy name (same name, same colour, in every figure)."""
    if name in _FIXED:
        return _FIXED[name]
    return _PALETTE[int(hashlib.md5(name.encode()).hexdigest(), 16) % len(_PALETTE)]


def short_model_name(model: str) -> str:
    return model.split("/")[-1]


def models_accuracy_cost(table: pd.DataFrame, suite: str) -> plt.Figure:
    """Accuracy against mean USD/query (log scale), one panel per benchmark plus 'all'."""
    rows = table[table["suite"] == suite]
    benchmarks = [b for b in rows["benchmark"].unique() if b != "all"] + ["all"]
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.2 * len(benchmarks), 4), squeeze=False,
                             sharey=True)
    for ax, bench in zip(axes[0], benchmarks):
        sub = rows[rows["benchmark"] == bench]
        for _, r in sub.iterrows():
            ax.scatter(r["usd_per_query"], r["accuracy"], color=color_for(r["model"]), s=40, zorder=3)
            ax.annotate(short_model_name(r["model"]), (r["usd_per_query"], r["accuracy"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(f"{bench} (n={int(sub['queries'].max())})")
        ax.set_xlabel("mean cost (USD per query, log scale)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (mean score)")
    estimated = bool(rows["cost_estimated"].any())
    fig.suptitle(f"{suite}: single models" + (" (costs estimated from tokens)" if estimated else ""))
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Write PNG and SVG; SVG without a timestamp so reruns give identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=120, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def mean_frontier(points: pd.DataFrame) -> pd.DataFrame:
    """Mean test (cost, accuracy) over seeds per policy and budget rank (budgets differ slightly per seed)."""
    pts = points.copy()
    pts["budget_rank"] = pts.groupby(["policy", "seed"])["budget_usd"].rank(method="first").fillna(0)
    return (pts.groupby(["policy", "budget_rank"], as_index=False)[["cost_usd", "accuracy"]].mean()
            .sort_values(["policy", "cost_usd"]))


def frontier(points: pd.DataFrame, suite: str, highlight: list[str], others: list[str] | None = None,
             oracle: str = "oracle (ceiling)") -> plt.Figure:
    """Cost-accuracy frontier on test: highlighted policies as lines, other policies faint, single models as
    dots, the average model's cost as a vertical line and the oracle as a ceiling."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    curves = mean_frontier(points[~points["policy"].str.startswith("single:")])
    singles = points[points["policy"].str.startswith("single:")].groupby("policy")[["cost_usd", "accuracy"]].mean()
    for policy in others or []:
        c = curves[curves["policy"] == policy]
        ax.plot(c["cost_usd"], c["accuracy"], color=color_for(policy), alpha=0.45, lw=1.2, label=policy)
    for policy in highlight:
        c = curves[curves["policy"] == policy]
        ax.plot(c["cost_usd"], c["accuracy"], color=color_for(policy), lw=2.6, marker="o", ms=3, label=policy)
    for policy, r in singles.iterrows():
        model = policy.split(":", 1)[1]
        ax.scatter(r["cost_usd"], r["accuracy"], color=color_for(model), s=35, zorder=4, edgecolor="k", lw=0.4)
        ax.annotate(short_model_name(model), (r["cost_usd"], r["accuracy"]), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    ax.axvline(singles["cost_usd"].mean(), color="grey", ls=":", lw=1)
    ax.text(singles["cost_usd"].mean(), ax.get_ylim()[0], " average model's cost", color="grey", fontsize=8,
            va="bottom")
    if oracle in set(points["policy"]):
        top = points[points["policy"] == oracle]["accuracy"].max()
        ax.axhline(top, color="k", ls="--", lw=0.8)
        ax.text(ax.get_xlim()[0], top, " oracle ceiling (reads scores)", fontsize=8, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("cost (USD per query, log scale; test split, mean over seeds)")
    ax.set_ylabel("accuracy (test split)")
    ax.set_title(f"{suite}: cost-accuracy frontier (knobs chosen per budget on calibrate)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    return fig


def router_comparison(summary: pd.DataFrame, suite: str, policies: list[str]) -> plt.Figure:
    """AIQ with its 95% CI over seeds for the given policies (e.g. the six EMAFusion variants and references)."""
    rows = summary.set_index("policy").loc[[p for p in policies if p in set(summary["policy"])]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh(list(y), rows["aiq"], xerr=[rows["aiq"] - rows["aiq_ci_low"], rows["aiq_ci_high"] - rows["aiq"]],
            color=[color_for(p) for p in rows.index], capsize=3)
    ax.set_yticks(list(y), rows.index, fontsize=8)
    ax.invert_yaxis()
    lo = max(0.0, float(rows["aiq_ci_low"].min()) - 0.05)
    ax.set_xlim(lo, min(1.0, float(rows["aiq_ci_high"].max()) + 0.02))
    ax.set_xlabel("AIQ over [cheapest, dearest model cost] (test split, 95% CI over seeds)")
    ax.set_title(f"{suite}: hybrid vs single routing, with/without cascade", fontsize=11)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def model_vs_sample_level(table: pd.DataFrame, suite: str) -> plt.Figure:
    """Model-level against sample-level accuracy per router (mean over seeds), one marker per budget point."""
    fig, ax = plt.subplots(figsize=(10, 5))
    means = table.groupby(["policy", "budget_quantile"], dropna=False)[["model_level", "sample_level"]].mean()
    for (policy, q), r in means.iterrows():
        if np.isnan(r["model_level"]):
            ax.axhline(r["sample_level"], color="k", ls="--", lw=0.8)
            ax.text(0.01, r["sample_level"], f" {policy}", fontsize=8, va="bottom", transform=ax.get_yaxis_transform())
            continue
        marker = "o" if (isinstance(q, float) and q >= 1.0) or np.isnan(q) else "s"
        ax.scatter(r["model_level"], r["sample_level"], color=color_for(policy), marker=marker, s=50,
                   label=f"{policy}" + ("" if np.isnan(q) else f" (budget q={q:g})"))
    ax.set_xlabel("model-level accuracy: routed to the best model of the query's category")
    ax.set_ylabel("sample-level accuracy: chosen model answers correctly")
    ax.set_title(f"{suite}: per-category versus per-query routing (test, mean over seeds)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def operating_point(frontier_table: pd.DataFrame, point, singles: pd.DataFrame, suite: str,
                    policy: str = "emafusion:hybrid+cascade") -> plt.Figure:
    """The explorer's view: the policy's test frontier with the current operating point, which models
    answered, and where the money went."""
    fig, (ax, ax_share, ax_cost) = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2.2, 1.3, 0.8]})
    curve = frontier_table.sort_values("cost_usd")
    ax.plot(curve["cost_usd"], curve["accuracy"], color=color_for(policy), lw=2, label=policy)
    ax.scatter(singles["cost_usd"], singles["accuracy"], color="grey", s=20, label="single models")
    ax.scatter([point.cost_usd], [point.accuracy], color="k", s=120, marker="*", zorder=5, label="operating point")
    if point.budget_usd is not None:
        ax.axvline(point.budget_usd, color="k", ls=":", lw=1, label="budget")
    ax.set_xscale("log")
    ax.set_xlabel("cost (USD per query, log scale, test split)")
    ax.set_ylabel("accuracy (test split)")
    ax.set_title(f"{suite}: accuracy {point.accuracy:.3f} at {point.cost_usd:.2e} USD/query", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    shares = point.shares[point.shares > 0].sort_values()
    ax_share.barh([short_model_name(m) for m in shares.index], shares.values,
                  color=[color_for(m) for m in shares.index])
    ax_share.set_xlabel("share of final answers")
    ax_share.set_title("which models answer", fontsize=10)
    parts = pd.Series(point.breakdown)
    ax_cost.bar(parts.index, parts.values * 1e3, color=["#1f77b4", "#d62728", "#7f7f7f"])
    ax_cost.set_ylabel("milli-USD per query")
    ax_cost.set_title("cost breakdown", fontsize=10)
    fig.tight_layout()
    return fig
