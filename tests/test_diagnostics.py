"""Judge diagnostics and router accuracy levels on hand-checkable inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emafusion_core.evaluation.judge_diagnostics import ece, judge_report


def test_ece_of_a_calibrated_and_an_overconfident_judge():
    # bin [0.2, 0.3): confidence 0.25, right 1 of 4 -> gap 0; bin [0.9, 1.0]: 0.95, right 2 of 4 -> gap 0.45
    conf = np.array([0.25] * 4 + [0.95] * 4)
    right = np.array([1, 0, 0, 0, 1, 1, 0, 0], bool)
    value, table = ece(conf, right)
    assert value == pytest.approx(0.5 * 0.0 + 0.5 * 0.45)
    assert table["n"].tolist() == [4, 4]
    perfect, _ = ece(np.array([0.0, 1.0]), np.array([False, True]))
    assert perfect == 0.0


def test_judge_report_counts_abstentions_and_agreement():
    # three graded answers (a missing answer is not in the table): a on q0 (right), b on q0 (wrong), a on q1 (wrong)
    table = pd.DataFrame({"query": [0, 0, 1], "model": ["a", "b", "a"], "right": [True, False, False],
                          "verifier": [0.9, 0.2, 0.8], "peer:b": [1.0, np.nan, 0.0]})
    report, pairs = judge_report(table)
    by = report.set_index("judge")
    assert by.loc["verifier", "accuracy"] == pytest.approx(2 / 3)  # 0.9 right, 0.2 wrong->right, 0.8 wrong
    assert by.loc["peer:b", "abstained"] == pytest.approx(1 / 3)
    assert by.loc["peer:b", "accuracy"] == pytest.approx(1.0)
    assert pairs.iloc[0]["agreement"] == pytest.approx(0.5)
