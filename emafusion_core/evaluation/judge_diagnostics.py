"""How good are the judges? Per judge and for the panel, on every recorded answer of the test split:
accuracy against the ground truth, expected calibration error with a reliability table, ROC AUC (overall and
per benchmark), inter-judge agreement, and abstention rate (evaluation.md, Judges). The scores are read here,
by the harness, to grade the judges: the judges themselves never see them.

Judges graded: the learned verifier, agreement with each fitted peer, and (when the method fitted it) the state
verifier alone and with the first peer's answer bought, as the panels offer them. Each judges one answer with
nothing else bought but what the judge itself buys (its peer), so the state verifier's agreement features see
at most the peer: inside a cascade it also reads the cheaper answers already run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..cascade import confidences_on
from ..judges import PeerAgreementJudge, aggregate


def verdict_table(method, view, scores: np.ndarray) -> pd.DataFrame:
    """Long table: one row per (query, answering model) with an answer, each judge's confidence (the fitted
    verifier, agreement with each fitted peer) and the truth. `method` is a fitted EMAFusion."""
    names = view.model_names
    n, m = scores.shape
    judges = [method.verifier_] + [PeerAgreementJudge(p) for p in method.peers_]
    sv = getattr(method, "state_verifier_", None)
    if sv is not None:
        judges += [sv.judge()] + [sv.judge([p]) for p in method.peers_[:1]]
    benchmark = [q.benchmark for q in view.queries]
    frames = []
    for j in range(m):
        has = np.array([e is None for e in view.executor.run_rows(view, np.arange(n), names[j]).error])
        frame = pd.DataFrame({"query": np.arange(n), "benchmark": benchmark, "model": names[j],
                              "right": scores[:, j] >= 0.5})
        for judge in judges:
            frame[judge.name] = confidences_on(view, view.executor, names, judge, j)
        frames.append(frame[has])
    return pd.concat(frames, ignore_index=True)


def seed_judge_reports(harness, seeds) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Judge diagnostics on the test split of each seed: (per-judge metrics, pairwise agreement, reliability
    tables, AUC per benchmark), each with a seed column. The harness's scorer grades the judges; the judges never
    see it."""
    from .emafusion import fitted_method

    reports, pairs, reliability, aucs = [], [], [], []
    for seed in seeds:
        views = harness.views(seed)
        with harness.limits():
            method = fitted_method(harness.fit_data(views["fit"]))
            test = views["test"]
            table = verdict_table(method, test, harness.scorer.scores(test.query_ids))
        report, agreement = judge_report(table)
        reports.append(report.assign(seed=seed))
        pairs.append(agreement.assign(seed=seed))
        aucs.append(auc_by_benchmark(table).assign(seed=seed))
        for judge in _judge_columns(table):
            reliability.append(ece(table[judge].to_numpy(float), table["right"].to_numpy())[1]
                               .assign(judge=judge, seed=seed))
    return (pd.concat(reports, ignore_index=True), pd.concat(pairs, ignore_index=True),
            pd.concat(reliability, ignore_index=True), pd.concat(aucs, ignore_index=True))


def _judge_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c == "verifier" or c.startswith("peer:") or c.startswith("state-verifier")]


def _panel_columns(table: pd.DataFrame) -> list[str]:
    """The judges the fixed-size panels combine (verifier and peers): the rule rows aggregate these."""
    return [c for c in table.columns if c == "verifier" or c.startswith("peer:")]


def auc(confidence: np.ndarray, right: np.ndarray) -> float:
    """ROC AUC of a judge's confidences over the answers it judged (NaN: abstained, or one class only)."""
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(confidence)
    truth = np.asarray(right, bool)[ok]
    return float(roc_auc_score(truth, confidence[ok])) if len(set(truth)) == 2 else np.nan


def auc_by_benchmark(table: pd.DataFrame) -> pd.DataFrame:
    """Long table (judge, benchmark, answers, auc): each judge's AUC on all answers ('*') and per benchmark."""
    rows = []
    groups = [("*", table)] + (list(table.groupby("benchmark", sort=True)) if "benchmark" in table else [])
    for bench, part in groups:
        right = part["right"].to_numpy()
        for judge in _judge_columns(table):
            c = part[judge].to_numpy(float)
            rows.append(dict(judge=judge, benchmark=bench, answers=int((~np.isnan(c)).sum()), auc=auc(c, right)))
    return pd.DataFrame(rows)


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
    judges = _judge_columns(table)
    right = table["right"].to_numpy()
    conf = table[judges].to_numpy(float)
    columns = {j: conf[:, i] for i, j in enumerate(judges)}
    panel = table[_panel_columns(table)].to_numpy(float)
    for rule in rules:
        columns[f"panel ({rule})"] = aggregate(panel, rule)
    rows = []
    for name, c in columns.items():
        ok = ~np.isnan(c)
        err, _ = ece(c, right)
        rows.append(dict(judge=name, answers=int(len(c)), abstained=float(1 - ok.mean()),
                         accuracy=float(((c[ok] >= 0.5) == right[ok]).mean()) if ok.any() else np.nan,
                         ece=err, auc=auc(c, right), mean_confidence=float(np.nanmean(c)) if ok.any() else np.nan,
                         base_rate_right=float(right[ok].mean()) if ok.any() else np.nan))
    pairs = []
    for a in range(len(judges)):
        for b in range(a + 1, len(judges)):
            both = ~np.isnan(conf[:, a]) & ~np.isnan(conf[:, b])
            if both.any():
                pairs.append(dict(judge_a=judges[a], judge_b=judges[b], answers=int(both.sum()),
                                  agreement=float(((conf[both, a] >= 0.5) == (conf[both, b] >= 0.5)).mean())))
    return pd.DataFrame(rows), pd.DataFrame(pairs)
