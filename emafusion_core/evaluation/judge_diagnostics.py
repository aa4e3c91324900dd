"""How good are the judges? Per judge and for the panel, on every recorded answer of the test split:
accuracy against the ground truth, expected calibration error with a reliability table, inter-judge
agreement, and abstention rate (evaluation.md, Judges). The scores are read here, by the harness, to grade
the judges: the judges themselves never see them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..judges import aggregate
from .cascade_replay import PanelInputs


def verdict_table(inputs: PanelInputs, peers: list[int], model_names: list[str], scores: np.ndarray) -> pd.DataFrame:
    """Long table: one row per (query, answering model) with each judge's confidence and the truth."""
    n, m = scores.shape
    q_idx, j_idx = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    table = pd.DataFrame({"query": q_idx.ravel(), "model": np.array(model_names)[j_idx.ravel()],
                          "right": (scores.ravel() >= 0.5), "has_answer": inputs.has_answer.ravel(),
                          "verifier": inputs.verifier.ravel()})
    for p in peers:
        table[f"peer:{model_names[p]}"] = inputs.agreement[p].ravel()
    return table[table["has_answer"]].drop(columns="has_answer").reset_index(drop=True)


def ece(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> tuple[float, pd.DataFrame]:
    """Expected calibration error over equal-width bins, and the reliability table behind it."""
    ok = ~np.isnan(confidence)
    conf, truth = confidence[ok], right[ok].astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    rows, total = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        gap = abs(conf[sel].mean() - truth[sel].mean())
        total += sel.mean() * gap
        rows.append(dict(bin_low=edges[b], bin_high=edges[b + 1], n=int(sel.sum()),
                         mean_confidence=float(conf[sel].mean()), share_right=float(truth[sel].mean())))
    return float(total), pd.DataFrame(rows)


def judge_report(table: pd.DataFrame, rules=("mean", "majority", "unanimity")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-judge and per-panel-rule metrics, pairwise agreement between judges)."""
    judges = [c for c in table.columns if c == "verifier" or c.startswith("peer:")]
    right = table["right"].to_numpy()
    conf = table[judges].to_numpy(float)
    columns = {j: conf[:, i] for i, j in enumerate(judges)}
    for rule in rules:
        columns[f"panel ({rule})"] = aggregate(conf, rule)
    rows = []
    for name, c in columns.items():
        ok = ~np.isnan(c)
        err, _ = ece(c, right)
        rows.append(dict(judge=name, answers=int(len(c)), abstained=float(1 - ok.mean()),
                         accuracy=float(((c[ok] >= 0.5) == right[ok]).mean()) if ok.any() else np.nan,
                         ece=err, mean_confidence=float(np.nanmean(c)) if ok.any() else np.nan,
                         base_rate_right=float(right[ok].mean()) if ok.any() else np.nan))
    pairs = []
    for a in range(len(judges)):
        for b in range(a + 1, len(judges)):
            both = ~np.isnan(conf[:, a]) & ~np.isnan(conf[:, b])
            if both.any():
                pairs.append(dict(judge_a=judges[a], judge_b=judges[b], answers=int(both.sum()),
                                  agreement=float(((conf[both, a] >= 0.5) == (conf[both, b] >= 0.5)).mean())))
    return pd.DataFrame(rows), pd.DataFrame(pairs)
