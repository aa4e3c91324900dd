"""The claims code reads the suite's GPT-4-class model from the models table, not from the numbers."""
from __future__ import annotations

import pandas as pd

from emafusion_core.data import gpt4_class_model
from emafusion_core.evaluation.claims import _best_single, _gpt4_class


def _points(suite: str) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for model, cal in (("gpt-4o-2024-08-06", 0.80), ("o1-mini-2024-09-12", 0.90)):
            rows.append(dict(suite=suite, policy=f"single:{model}", seed=seed, budget_usd=float("nan"),
                             cal_accuracy=cal, accuracy=cal, cost_usd=0.003, cal_cost_usd=0.003))
    return pd.DataFrame(rows)


def test_gpt4_class_comes_from_the_models_table_not_the_best_model():
    points = _points("zeroeval")
    assert gpt4_class_model("zeroeval") == "gpt-4o-2024-08-06"
    best = _best_single(points)
    assert set(best["policy"]) == {"single:o1-mini-2024-09-12"}  # the strongest on calibrate ...
    strong = _gpt4_class(points, "zeroeval", None, best)
    assert set(strong["policy"]) == {"single:gpt-4o-2024-08-06"}  # ... is not the suite's GPT-4
    assert list(strong.index) == [0, 1]


def test_a_suite_without_the_column_falls_back_to_the_strongest_model(tmp_path):
    points = _points("mysuite")
    assert gpt4_class_model("mysuite", tmp_path) is None
    best = _best_single(points)
    assert _gpt4_class(points, "mysuite", None, best) is best
