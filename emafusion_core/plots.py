"""One function per figure: data in, matplotlib Figure out. No computation of results here.

Colours are fixed per name (model or policy) across every figure, so a reader can follow a model
from the models table to the frontier.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

_PALETTE = sns.color_palette("tab20", 20)
matplotlib.rcParams["svg.hashsalt"] = "emafusion"  # deterministic SVG ids: reruns give identical files


def color_for(name: str):
    """A stable colour for a model or policy name (same name, same colour, in every figure)."""
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
