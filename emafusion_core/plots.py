"""One function per figure: data in, matplotlib Figure out. No computation of results here.

Colours are fixed per name across every figure, so a reader can follow a model from the models table to the
frontier: policies have named colours (_FIXED), a suite's models a palette by sorted name (model_styles).
"""
from __future__ import annotations

from pathlib import Path

# No backend is chosen here: in a notebook kernel (JupyterLab, papermill) the inline backend shows and keeps
# the figures; a script without a display falls back to Agg by itself (or set MPLBACKEND=Agg).
import matplotlib
import matplotlib.pyplot as plt
import matplotlib.legend
import numpy as np
import pandas as pd
import seaborn as sns

matplotlib.rcParams["svg.hashsalt"] = "emafusion"  # deterministic SVG ids: reruns give identical files

# Policies: fixed, named colours (the same in every figure). EMAFusion variants in reds/blues/greens (strong =
# with cascade, light = without), baselines in the remaining tab10 hues; references in greys and black.
_FIXED = dict(zip(
    ["emafusion:hybrid+cascade", "emafusion:hybrid", "emafusion:learned+cascade", "emafusion:learned",
     "emafusion:taxonomy+cascade", "emafusion:taxonomy", "knn", "mlp", "frugal-cascade", "threshold-cascade",
     "automix", "routellm", "zero-router", "zero-router hull (test)", "random", "oracle (ceiling)"],
    ["#d62728", "#ff9896", "#1f77b4", "#aec7e8", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5", "#8c564b",
     "#c49c94", "#e377c2", "#bcbd22", "#7f7f7f", "#c7c7c7", "#dbdb8d", "#000000"]))
OTHER_COLOUR = "#b0b0b0"  # the faint "other baselines" group of a frontier
MAX_EMPHASISED = 8  # policies drawn in their own colour on one frontier; the rest go to "other baselines"

# Models: a palette assigned by sorted model name within a suite (no hash, so no two models of a suite share a
# colour), with a marker per model so that even similar hues stay apart. tab20's strong hues first, then its
# light ones; beyond 20 models, evenly spaced hues.
_MODEL_PALETTE = [sns.color_palette("tab20", 20)[i] for i in (*range(0, 20, 2), *range(1, 20, 2))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]
_MODEL_STYLE: dict[str, tuple] = {}  # model -> (colour, marker), filled per suite by model_styles


def model_styles(models) -> dict[str, tuple]:
    """(colour, marker) per model of one suite, assigned by sorted model name: the same suite gives the same
    mapping in every figure, and no two of its models share a colour. Registers them for color_for."""
    names = sorted({str(m) for m in models})
    palette = _MODEL_PALETTE if len(names) <= len(_MODEL_PALETTE) else sns.color_palette("husl", len(names))
    styles = {m: (palette[i], _MARKERS[i % len(_MARKERS)]) for i, m in enumerate(names)}
    _MODEL_STYLE.update(styles)
    return styles


def color_for(name: str, models=None):
    """A stable colour for a model or policy name. Policies have fixed colours; a model gets its suite's colour
    (pass the suite's `models`, or after any figure of that suite has registered them; `single:<model>` too).
    An unknown name gets neutral grey rather than a colour that could collide with another's."""
    if name in _FIXED:
        return _FIXED[name]
    if models is not None:
        return model_styles(models)[name][0]
    model = name.split(":", 1)[1] if name.startswith("single:") else name
    if model in _MODEL_STYLE:
        return _MODEL_STYLE[model][0]
    return "#555555"


def short_model_name(model: str) -> str:
    return model.split("/")[-1]


def _legend_outside(ax, fig=None, **kw):
    """A legend right of the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize=kw.pop("fontsize", 7), frameon=False, **kw)


def models_accuracy_cost(table: pd.DataFrame, suite: str, max_cols: int = 5) -> plt.Figure:
    """Accuracy against mean USD/query (log scale), one panel per benchmark plus 'all', wrapped into a grid of at
    most `max_cols` columns. Every panel shares both axes (one definition of each); each model has its suite's
    colour and marker, named in one legend outside the panels."""
    rows = table[table["suite"] == suite]
    benchmarks = [b for b in rows["benchmark"].unique() if b != "all"] + ["all"]
    styles = model_styles(rows["model"].unique())
    n_cols = min(len(benchmarks), max_cols)
    n_rows = int(np.ceil(len(benchmarks) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols + 2.6, 3.0 * n_rows + 0.8), squeeze=False,
                             sharex=True, sharey=True)
    order = rows[rows["benchmark"] == "all"].sort_values("usd_per_query")["model"].tolist()
    for ax, bench in zip(axes.flat, benchmarks):
        sub = rows[rows["benchmark"] == bench].set_index("model")
        for model in [m for m in order if m in sub.index] + [m for m in sub.index if m not in order]:
            colour, marker = styles[model]
            ax.scatter(sub.loc[model, "usd_per_query"], sub.loc[model, "accuracy"], color=colour, marker=marker,
                       s=42, zorder=3, edgecolor="k", lw=0.4, label=short_model_name(model))
        ax.set_xscale("log")
        ax.set_title(f"{bench} (n={int(sub['queries'].max())})", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(benchmarks):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("mean USD per query (log)")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (mean score)")
    # models are listed cheapest first, as in the table
    handles, labels = axes.flat[len(benchmarks) - 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0 - 2.5 / fig.get_figwidth(), 0.93),
               fontsize=7, frameon=False, title="models (cheapest first)", title_fontsize=8)
    estimated = bool(rows["cost_estimated"].any())
    fig.suptitle(f"{suite}: single models" + (" (costs estimated from tokens)" if estimated else ""))
    fig.tight_layout(rect=(0, 0, 1.0 - 2.6 / fig.get_figwidth(), 0.97))
    return fig


def save_figure(fig: plt.Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Write PNG and SVG; SVG without a timestamp so reruns give identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    # bbox_inches="tight": legends placed outside the axes are kept, never clipped; a legend kept with
    # ax.add_artist (a second legend on one axes) is not in the tight box unless named
    extra = [a for ax in fig.axes for a in ax.artists if isinstance(a, matplotlib.legend.Legend)]
    fig.savefig(paths[0], dpi=120, metadata={"Software": None}, bbox_inches="tight", bbox_extra_artists=extra or None)
    fig.savefig(paths[1], metadata={"Date": None, "Creator": None}, bbox_inches="tight",
                bbox_extra_artists=extra or None)
    plt.close(fig)
    return paths


def mean_frontier(points: pd.DataFrame) -> pd.DataFrame:
    """Mean test (cost, accuracy) over seeds per policy and budget rank (budgets differ slightly per seed)."""
    pts = points.copy()
    pts["budget_rank"] = pts.groupby(["policy", "seed"])["budget_usd"].rank(method="first").fillna(0)
    return (pts.groupby(["policy", "budget_rank"], as_index=False)[["cost_usd", "accuracy"]].mean()
            .sort_values(["policy", "cost_usd"]))


def frontier(points: pd.DataFrame, suite: str, highlight: list[str], others: list[str] | None = None,
             oracle: str = "oracle (ceiling)", max_emphasised: int = MAX_EMPHASISED) -> plt.Figure:
    """Cost-accuracy frontier on test: up to `max_emphasised` highlighted policies as lines in their own colours,
    every other policy as one faint grey "other baselines" group, single models as dots (their suite's colours
    and markers), and labelled reference lines: the zero-router hull (mixing single models), the oracle ceiling
    and the average model's cost. Legends sit right of the axes, outside the data. Policies absent from `points`
    (e.g. unavailable on this suite) are skipped."""
    fig, ax = plt.subplots(figsize=(11.5, 5.5))
    present = set(points["policy"])
    highlight = [p for p in highlight if p in present]
    others = [p for p in (others or []) if p in present and p not in highlight]
    if len(highlight) > max_emphasised:
        highlight, others = highlight[:max_emphasised], highlight[max_emphasised:] + others
    curves = mean_frontier(points[~points["policy"].str.startswith("single:")])
    singles = points[points["policy"].str.startswith("single:")].groupby("policy")[["cost_usd", "accuracy"]].mean()
    styles = model_styles([p.split(":", 1)[1] for p in singles.index])
    for i, policy in enumerate(others):
        c = curves[curves["policy"] == policy]
        ax.plot(c["cost_usd"], c["accuracy"], color=OTHER_COLOUR, alpha=0.8, lw=1.0, zorder=1,
                label=f"other baselines ({len(others)})" if i == 0 else None)
    if len(singles) > 1:
        from .evaluation.metrics import zero_router_hull

        hc, hq = zero_router_hull(singles["cost_usd"].to_numpy(), singles["accuracy"].to_numpy())
        ax.plot(hc, hq, color=_FIXED["zero-router hull (test)"], lw=1.6, ls="-.", zorder=2,
                label="zero-router hull (random mix of single models)")
    for policy in highlight:
        c = curves[curves["policy"] == policy]
        ax.plot(c["cost_usd"], c["accuracy"], color=color_for(policy), lw=2.4, marker="o", ms=3, zorder=3,
                label=policy)
    model_handles = []
    for policy, r in singles.sort_values("cost_usd").iterrows():
        model = policy.split(":", 1)[1]
        colour, marker = styles[model]
        model_handles.append(ax.scatter(r["cost_usd"], r["accuracy"], color=colour, marker=marker, s=45, zorder=4,
                                        edgecolor="k", lw=0.4, label=short_model_name(model)))
    avg = singles["cost_usd"].mean()
    ax.axvline(avg, color="grey", ls=":", lw=1.2, label=f"average single model's cost ({avg:.2g} USD)")
    if oracle in present:
        top = points[points["policy"] == oracle]["accuracy"].max()
        ax.axhline(top, color="k", ls="--", lw=0.9, label=f"oracle ceiling {top:.3f} (reads scores)")
    ax.set_xscale("log")
    ax.set_xlabel("cost (USD per query, log scale; test split, mean over seeds)")
    ax.set_ylabel("accuracy (test split)")
    ax.set_title(f"{suite}: cost-accuracy frontier (knobs chosen per budget on calibrate)", fontsize=11)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    n_models = len(model_handles)
    policy_handles = [(h, l) for h, l in zip(handles, labels) if h not in model_handles]
    wrapped = [(h, "\n".join(_wrap(l, 46))) for h, l in policy_handles]
    first = ax.legend(*zip(*wrapped), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False,
                      title="policies and references", title_fontsize=8)
    ax.add_artist(first)
    if n_models:
        ax.legend(model_handles, [h.get_label() for h in model_handles], loc="lower left",
                  bbox_to_anchor=(1.02, 0.0), fontsize=7, frameon=False, title="single models (cheapest first)",
                  title_fontsize=8, ncol=1 if n_models <= 12 else 2)
    fig.tight_layout(rect=(0, 0, 0.74 if n_models <= 12 else 0.64, 1))
    return fig


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [text]


def router_comparison(summary: pd.DataFrame, suite: str, policies: list[str],
                      xlim: tuple[float, float] | None = None) -> plt.Figure:
    """AIQ with its 95% CI over seeds for the given policies (e.g. the six EMAFusion variants and references).

    Bars start at 0 and end at 1 by default (pass the same `xlim` to sibling figures to zoom them alike), so the
    same length means the same AIQ in every suite's figure. A policy whose AIQ is not defined (NaN: no cost
    range, or every setting at the dearest cost) is listed with "AIQ not defined" instead of a bar."""
    rows = summary.set_index("policy").loc[[p for p in policies if p in set(summary["policy"])]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    aiq_v = rows["aiq"].to_numpy(float)
    lo_err = np.nan_to_num(aiq_v - rows["aiq_ci_low"].to_numpy(float))
    hi_err = np.nan_to_num(rows["aiq_ci_high"].to_numpy(float) - aiq_v)
    ax.barh(y, np.nan_to_num(aiq_v), xerr=[lo_err, hi_err], color=[color_for(p) for p in rows.index], capsize=3)
    lo, hi = xlim if xlim is not None else (0.0, 1.0)
    for yi, value, top in zip(y, aiq_v, aiq_v + hi_err):
        if not np.isfinite(value):
            ax.text(lo + 0.01 * (hi - lo), yi, "AIQ not defined (see the summary's note)", va="center", fontsize=7,
                    color="#555555")
        else:
            ax.text(min(top + 0.005 * (hi - lo), hi), yi, f" {value:.3f}", va="center", fontsize=7)
    ax.set_yticks(list(y), rows.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(lo, hi)
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
                   label=f"{policy}" + ("" if np.isnan(q) else
                                         (" (largest budget)" if q >= 1.0 else f" (budget at {q:.0%} of the grid)")))
    ax.set_xlabel("model-level accuracy: routed to the best model of the query's category")
    ax.set_ylabel("sample-level accuracy: chosen model answers correctly")
    ax.set_title(f"{suite}: per-category versus per-query routing (test, mean over seeds)", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
              title="o: largest budget; s: the budget halfway along\nthe log-spaced budget grid (rank quantile)",
              title_fontsize=7)
    fig.tight_layout()
    return fig


def operating_point(frontier_table: pd.DataFrame, point, singles: pd.DataFrame, suite: str,
                    policy: str = "emafusion:hybrid+cascade") -> plt.Figure:
    """The explorer's view: the policy's test frontier with the current operating point, which models
    answered, and where the money went."""
    fig, (ax, ax_share, ax_cost) = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained",
                                                gridspec_kw={"width_ratios": [2.2, 1.1, 0.7]})
    # the operating point is one of the policy's settings on test: drawn on the curve, which passes through it
    curve = pd.concat([frontier_table[["cost_usd", "accuracy"]],
                       pd.DataFrame({"cost_usd": [point.cost_usd], "accuracy": [point.accuracy]})])
    curve = curve.drop_duplicates().sort_values(["cost_usd", "accuracy"])
    ax.plot(curve["cost_usd"], curve["accuracy"], color=color_for(policy), lw=2, marker="o", ms=3,
            label=f"{policy} (test, one point per budget)")
    styles = model_styles(singles.index) if len(singles) else {}
    for model, r in singles.iterrows():
        colour, marker = styles[model]
        ax.scatter(r["cost_usd"], r["accuracy"], color=colour, marker=marker, s=30, edgecolor="k", lw=0.3,
                   zorder=3, label=f"single: {short_model_name(model)}")
    ax.scatter([point.cost_usd], [point.accuracy], color="k", s=160, marker="*", zorder=5, label="operating point")
    if point.budget_usd is not None:
        ax.axvline(point.budget_usd, color="k", ls=":", lw=1, label=f"budget {point.budget_usd:.2e} USD")
    ax.set_xscale("log")
    ax.set_xlabel("cost (USD per query, log scale, test split)")
    ax.set_ylabel("accuracy (test split)")
    budget = "" if point.budget_usd is None else f" (budget {point.budget_usd:.2e} USD)"
    ax.set_title(f"{suite}: accuracy {point.accuracy:.3f} at {point.cost_usd:.2e} USD/query{budget}", fontsize=10)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    shares = point.shares[point.shares > 0].sort_values()
    ax_share.barh([short_model_name(m) for m in shares.index], shares.values,
                  color=[color_for(m) for m in shares.index])
    ax_share.set_xlim(0, 1)
    ax_share.set_xlabel("share of final answers")
    ax_share.set_title("which models answer", fontsize=10)
    parts = pd.Series(point.breakdown)
    ax_cost.bar(parts.index, parts.values, color=["#1f77b4", "#d62728", "#7f7f7f"])
    ax_cost.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax_cost.set_ylabel("USD per query")
    ax_cost.set_title("cost breakdown", fontsize=10)
    ax_cost.tick_params(axis="x", labelsize=8)
    return fig


_ARM_STYLE = {"frozen": ("#444444", "-"), "verdicts": ("#d62728", "-"), "ceiling (true scores)": ("#2ca02c", "--"),
              "all of fit labelled": ("#1f77b4", ":")}


def self_optimising_curves(rows: pd.DataFrame, suite: str, metric: str = "aiq") -> plt.Figure:
    """Test `metric` minus the frozen system's, paired by seed, against streamed queries: one panel per labelled
    share of fit, one line per arm (mean over seeds, band: 95% t-interval over seeds)."""
    from scipy import stats

    if "stream" not in rows:
        rows = rows.assign(stream="random")
    panels = sorted(rows[["stream", "label_share"]].drop_duplicates().itertuples(index=False, name=None),
                    key=lambda p: (p[0] != "random", p[1]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 2.4, 3.8), sharey=True, squeeze=False,
                             layout="constrained")
    wide = rows.pivot_table(index=["stream", "label_share", "seed", "seen"], columns="arm", values=metric)
    for ax, (stream, share) in zip(axes[0], panels):
        part = wide.loc[(stream, share)]
        ax.axhline(0, color=_ARM_STYLE["frozen"][0], lw=1.2, label="frozen (fitted on the slice)")
        for arm, (colour, ls) in _ARM_STYLE.items():
            if arm == "frozen" or arm not in part:
                continue
            diff = (part[arm] - part["frozen"]).groupby(level="seen")
            mean, sd, n = diff.mean(), diff.std(ddof=1), diff.count()
            half = (stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)).fillna(0)
            ax.plot(mean.index, mean.to_numpy(), color=colour, ls=ls, lw=1.8, marker="o", ms=3, label=arm)
            ax.fill_between(mean.index, (mean - half).to_numpy(), (mean + half).to_numpy(), color=colour,
                            alpha=0.15, lw=0)
        ax.set_title(f"fitted on {share:.0%} of fit (labelled)"
                     + ("" if stream == "random" else "\nstream in blocks (drift)"), fontsize=10)
        ax.set_xlabel("unlabelled fit queries streamed")
        ax.grid(alpha=0.3)
    name = metric.upper() if metric == "aiq" else metric
    axes[0][0].set_ylabel(f"test {name} minus frozen (same seed)")
    axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
                       title="mean over seeds (band: 95% CI)", title_fontsize=8)
    fig.suptitle(f"{suite}: self-optimising from judge verdicts (no labels) against frozen and the labelled ceiling",
                 fontsize=11)
    return fig


def cold_start_curves(rows: pd.DataFrame, suite: str) -> plt.Figure:
    """The cold-start experiment (evaluation/cold_start.py): the newcomer's share of returned answers per streamed
    batch, in its good categories (left) and elsewhere (right), one line per seed (the cold loop, solid) with the
    same seed's reference (the slice fitted with its labels, frozen, dotted: its share over the whole stream)."""
    stream = rows[rows["seen"] > 0]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), sharey=True, layout="constrained")
    colours = plt.get_cmap("tab10")
    for n, (seed, g) in enumerate(stream.groupby("seed", sort=True)):
        colour = colours(n % 10)
        for ax, where in zip(axes, ("good", "other")):
            ref = g[f"reference_newcomer_{where}"].sum() / max(g[f"n_{where}"].sum(), 1)
            ax.plot(g["seen"], g[f"share_{where}"], color=colour, marker="o", ms=3, lw=1.6,
                    label=f"seed {seed}: {short_model_name(str(g['newcomer'].iloc[0]))}")
            ax.axhline(ref, color=colour, ls=":", lw=1.2)
    for ax, where in zip(axes, ("in its good categories", "elsewhere")):
        ax.set_title(f"newcomer's share of answers {where}", fontsize=10)
        ax.set_xlabel("unlabelled fit queries streamed")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the batch's queries")
    axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
                    title="cold loop (dotted: fitted with its labels)", title_fontsize=8)
    fig.suptitle(f"{suite}: cold start of a model with no labelled outcome, learning from judge verdicts", fontsize=11)
    return fig


def judges_quality(report: pd.DataFrame, aucs: pd.DataFrame, suite: str) -> plt.Figure:
    """Each judge's accuracy and ECE (left) beside its ROC AUC per benchmark (right), means over seeds, from
    judge_diagnostics.seed_judge_reports (report rows of single judges only; the panel-rule rows are left out)."""
    judges = [j for j in dict.fromkeys(report["judge"]) if not str(j).startswith("panel (")]
    by = report[report["judge"].isin(judges)].groupby("judge", sort=False)[["accuracy", "ece"]].mean().loc[judges]
    table = aucs.groupby(["benchmark", "judge"], sort=False)["auc"].mean().unstack("judge")
    table = table.reindex(columns=judges)
    order = ["*"] + sorted(b for b in table.index if b != "*")
    table = table.loc[[b for b in order if b in table.index]]
    colours = dict(zip(judges, sns.color_palette("tab10", max(len(judges), 1))))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.35 * max(len(judges), len(table)) * 2 + 1.8),
                                      gridspec_kw={"width_ratios": [1, 1.6]})
    y = np.arange(len(judges))
    left.barh(y - 0.2, by["accuracy"].to_numpy(float), height=0.4, color="#4c72b0", label="accuracy")
    left.barh(y + 0.2, by["ece"].to_numpy(float), height=0.4, color="#dd8452", label="ECE")
    left.set_yticks(list(y), judges, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("accuracy (confidence >= 0.5 vs right) and ECE")
    left.legend(fontsize=7, frameon=False, loc="lower right")
    left.grid(alpha=0.3, axis="x")
    width = 0.8 / max(len(judges), 1)
    yb = np.arange(len(table))
    for i, judge in enumerate(judges):
        right.barh(yb - 0.4 + (i + 0.5) * width, np.nan_to_num(table[judge].to_numpy(float)), height=width,
                   color=colours[judge], label=judge)
    right.axvline(0.5, color="#555555", lw=0.8, ls="--")
    right.set_yticks(list(yb), ["all" if b == "*" else b for b in table.index], fontsize=8)
    right.invert_yaxis()
    right.set_xlim(0.3, 1.0)
    right.set_xlabel("ROC AUC per benchmark (0.5: no signal)")
    _legend_outside(right)
    right.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{suite}: judges on every recorded test answer (mean over seeds)", fontsize=11)
    fig.tight_layout()
    return fig
