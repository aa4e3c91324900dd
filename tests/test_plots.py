"""Figures: stable, distinct colours per model; legends outside; bar axes from 0; wide facets wrap; the explorer's
star lies on its drawn frontier."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless file output in tests only
import numpy as np
import pandas as pd

from emafusion_core import plots
from emafusion_core.evaluation import models_table


def test_models_of_a_suite_get_distinct_stable_colours(routerbench):
    a = plots.model_styles(routerbench.model_names)
    b = plots.model_styles(list(reversed(routerbench.model_names)))
    assert a == b and len({v[0] for v in a.values()}) == len(a)
    assert plots.color_for("claude-instant-v1") != plots.color_for("claude-v2")
    assert plots.color_for("emafusion:hybrid+cascade") == "#d62728"


def test_wide_facets_wrap_into_a_grid(routerbench):
    table = models_table(routerbench)
    many = pd.concat([table.assign(benchmark=f"b{i}") for i in range(14)] + [table[table["benchmark"] == "all"]])
    fig = plots.models_accuracy_cost(many, "routerbench")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 15 and fig.get_figwidth() < 25 and len(fig.legends) == 1


def _points():
    rows = []
    for i, policy in enumerate(["single:a", "single:b"]):
        rows.append(dict(policy=policy, seed=0, budget_usd=np.nan, cost_usd=[1e-4, 1e-3][i], accuracy=[0.5, 0.8][i]))
    for k in range(12):
        for b, (c, q) in enumerate([(1e-4, 0.5), (5e-4, 0.7), (1e-3, 0.8)]):
            rows.append(dict(policy=f"p{k}", seed=0, budget_usd=c, cost_usd=c, accuracy=q - 0.01 * k))
    rows.append(dict(policy="oracle (ceiling)", seed=0, budget_usd=np.nan, cost_usd=2e-4, accuracy=0.95))
    return pd.DataFrame(rows)


def test_frontier_emphasises_at_most_eight_and_labels_its_reference_lines():
    fig = plots.frontier(_points(), "toy", highlight=[f"p{k}" for k in range(10)], others=["p10", "p11", "absent"])
    labels = [t.get_text() for legend in fig.axes[0].get_children() if isinstance(legend, matplotlib.legend.Legend)
              for t in legend.get_texts()]
    assert "other baselines (4)" in labels and sum(l.startswith("p") for l in labels) == 8
    assert any(l.startswith("oracle ceiling") for l in labels) and any(l.startswith("zero-router hull") for l in labels)
    assert any(l.startswith("average single model's cost") for l in labels)


def test_bar_axes_start_at_zero_and_undefined_aiq_is_written_out():
    summary = pd.DataFrame(dict(policy=["a", "b"], aiq=[0.8, np.nan], aiq_ci_low=[0.78, np.nan],
                                aiq_ci_high=[0.82, np.nan]))
    fig = plots.router_comparison(summary, "toy", ["a", "b"])
    assert fig.axes[0].get_xlim() == (0.0, 1.0)
    assert any("AIQ not defined" in t.get_text() for t in fig.axes[0].texts)


def test_the_explorers_star_is_on_its_drawn_frontier():
    from types import SimpleNamespace

    table = pd.DataFrame(dict(budget_usd=[1e-4, 1e-3], cost_usd=[1e-4, 1e-3], accuracy=[0.5, 0.8]))
    point = SimpleNamespace(cost_usd=4e-4, accuracy=0.62, budget_usd=5e-4, shares=pd.Series({"a": 0.4, "b": 0.6}),
                            breakdown={"model": 4e-4, "judge": 0.0, "router": 0.0})
    singles = pd.DataFrame(dict(cost_usd=[1e-4, 1e-3], accuracy=[0.5, 0.8]), index=["a", "b"])
    fig = plots.operating_point(table, point, singles, "toy")
    line = fig.axes[0].get_lines()[0]
    assert (4e-4, 0.62) in set(zip(line.get_xdata(), line.get_ydata()))
    assert fig.axes[2].get_ylabel() == "USD per query"
