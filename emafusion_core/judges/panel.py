"""A panel of judges and the rules that turn their verdicts into one confidence.

Rules: mean of the confidences; majority (share of judges saying right, confidence >= 0.5); unanimity
(the least confident judge); calibrated (a logistic regression over the judges' confidences, fitted on
the calibrate split; our default for the paper's "calibrated mean"). Abstentions are left out of mean,
majority and unanimity; the calibrated rule sees them as 0.5 plus an abstention flag. When every judge
abstains the panel abstains, and the cascade escalates.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .base import Judge

RULES = ("mean", "majority", "unanimity", "calibrated")


class Calibrator:
    """Logistic regression from the judges' confidences (and abstention flags) to P(right)."""

    def __init__(self, C: float = 1.0):
        self.C = C
        self._clf = None

    @staticmethod
    def _features(conf: np.ndarray) -> np.ndarray:
        missing = np.isnan(conf)
        return np.hstack([np.where(missing, 0.5, conf), missing.astype(float)])

    def fit(self, conf: np.ndarray, correct: np.ndarray) -> "Calibrator":
        from sklearn.linear_model import LogisticRegression

        y = (np.asarray(correct, float) >= 0.5).astype(int)
        if len(np.unique(y)) < 2:
            raise ValueError("calibration needs both right and wrong answers")
        self._clf = LogisticRegression(C=self.C, max_iter=1000).fit(self._features(np.asarray(conf, float)), y)
        return self

    def predict(self, conf: np.ndarray) -> np.ndarray:
        if self._clf is None:
            raise RuntimeError("Calibrator used before fit")
        return self._clf.predict_proba(self._features(np.asarray(conf, float)))[:, 1]


def aggregate(conf: np.ndarray, rule: str, calibrator: Calibrator | None = None) -> np.ndarray:
    """Vectorised aggregation of an (n, n_judges) confidence matrix (NaN = abstained) -> (n,) with NaN
    where the panel abstains."""
    conf = np.atleast_2d(np.asarray(conf, float))
    all_missing = np.isnan(conf).all(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: the panel abstains there
        if rule == "mean":
            out = np.nanmean(conf, axis=1)
        elif rule == "majority":
            votes = np.where(np.isnan(conf), np.nan, (conf >= 0.5).astype(float))
            out = np.nanmean(votes, axis=1)
        elif rule == "unanimity":
            out = np.nanmin(conf, axis=1)
        elif rule == "calibrated":
            if calibrator is None:
                raise ValueError("the calibrated rule needs a fitted Calibrator")
            out = calibrator.predict(conf)
        else:
            raise ValueError(f"unknown aggregation rule {rule!r}; expected one of {RULES}")
    return np.where(all_missing, np.nan, out)


class Panel:
    """Judges plus the rule that combines their confidences; `assess` judges rows of the cascade's state."""

    def __init__(self, judges: Sequence[Judge], rule: str = "mean", calibrator: Calibrator | None = None):
        if not judges:
            raise ValueError("a panel needs at least one judge")
        if rule not in RULES:
            raise ValueError(f"unknown aggregation rule {rule!r}; expected one of {RULES}")
        if rule == "calibrated" and calibrator is None:
            raise ValueError("the calibrated rule needs a fitted Calibrator")
        self.judges, self.rule, self.calibrator = list(judges), rule, calibrator

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.judges]

    def assess(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        """Every judge in order (answers one buys are visible to the next), then the aggregate; NaN where the
        whole panel abstains."""
        columns = []
        for judge in self.judges:
            c = np.asarray(judge.judge_rows(state, rows, models), float)
            state.note(rows, models, judge.name, c)
            columns.append(c)
        return aggregate(np.stack(columns, axis=1), self.rule, self.calibrator)
