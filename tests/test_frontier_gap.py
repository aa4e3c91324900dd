"""The never-worse-than-its-parts check: per budget, EMAFusion minus each own variant over seeds, flagged below
only when the seed CI lies entirely under 0."""
from __future__ import annotations

import numpy as np
import pandas as pd

from emafusion_core.evaluation.frontier_gap import frontier_gaps, worst_gaps


def _points(offsets: dict[str, list[float]], seeds=(0, 1, 2, 3, 4), n_budgets=4, noise=0.002,
            flip: str | None = None) -> pd.DataFrame:
    """flip: this policy's offsets change sign from seed to seed (a difference that is noise across seeds)."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        budgets = np.geomspace(1e-4, 1e-2, n_budgets) * (1 + 0.01 * seed)  # each seed its own calibrate grid
        base = rng.uniform(0.6, 0.7, n_budgets)
        for policy, off in offsets.items():
            sign = (-1) ** seed if policy == flip else 1
            jitter = rng.normal(0, noise, n_budgets) if noise else 0.0
            for b, (budget, acc) in enumerate(zip(budgets, base + sign * np.asarray(off) + jitter)):
                rows.append(dict(suite="s", policy=policy, seed=seed, budget_usd=budget, accuracy=acc))
        rows.append(dict(suite="s", policy="single:m", seed=seed, budget_usd=np.nan, accuracy=0.9))
    return pd.DataFrame(rows)


def test_a_variant_clearly_above_at_one_budget_is_flagged_there_only():
    points = _points({"emafusion:hybrid+cascade": [0, 0, 0, 0], "emafusion:learned": [0, 0.05, 0, 0],
                      "emafusion:taxonomy": [-0.05, -0.05, -0.05, -0.05]})
    gaps = frontier_gaps(points, "emafusion:hybrid+cascade")
    assert set(gaps["other"]) == {"emafusion:learned", "emafusion:taxonomy"}
    learned = gaps[gaps["other"] == "emafusion:learned"].set_index("budget_index")
    assert learned["below"].tolist() == [False, True, False, False]
    assert learned.loc[1, "gap"] < -0.04 and (learned["n_seeds"] == 5).all()
    assert not gaps[gaps["other"] == "emafusion:taxonomy"]["below"].any()
    worst = worst_gaps(gaps)
    assert worst.iloc[0]["other"] == "emafusion:learned" and worst.iloc[0]["budgets_below"] == 1


def test_noise_alone_is_not_below_and_one_seed_is_never_below():
    points = _points({"emafusion:hybrid+cascade": [0, 0, 0, 0], "emafusion:learned": [0.03] * 4}, noise=0,
                     flip="emafusion:learned")
    assert not frontier_gaps(points, "emafusion:hybrid+cascade")["below"].any()
    one = _points({"emafusion:hybrid+cascade": [0] * 4, "emafusion:learned": [0.05] * 4}, seeds=(0,))
    gaps = frontier_gaps(one, "emafusion:hybrid+cascade")
    assert not gaps["below"].any() and gaps["ci_high"].isna().all()


def test_a_budget_a_variant_cannot_meet_on_calibrate_is_no_comparison():
    """Below its cheapest setting a variant's pick is over budget (feasible False): its accuracy there is left
    out, and the other budgets keep their places in the grid."""
    points = _points({"emafusion:hybrid+cascade": [0, 0, 0, 0], "emafusion:learned": [0.2, 0.2, 0, 0]})
    points["feasible"] = ~((points["policy"] == "emafusion:learned")
                           & points.groupby(["policy", "seed"])["budget_usd"].rank().le(2))
    gaps = frontier_gaps(points, "emafusion:hybrid+cascade")
    assert gaps["budget_index"].tolist() == [2, 3] and not gaps["below"].any()
    assert frontier_gaps(points.drop(columns="feasible"), "emafusion:hybrid+cascade")["below"].sum() == 2
