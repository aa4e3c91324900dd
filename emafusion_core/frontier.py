"""The cost-quality frontier of a set of operating points: NDCH and AIQ (../shared/docs/evaluation.md).

Core (not evaluation/) because calibration uses them too: the method picks its structural knobs by AIQ on
the calibrate split with the same code the harness reports on test. Pure numpy.
- AIQ left edge: quality 0 below the cheapest point of the NDCH (see `aiq`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

class Hull(NamedTuple):
    """Knots of a non-decreasing piecewise-linear frontier, sorted by cost (a plain (costs, qualities) tuple)."""
    costs: np.ndarray
    qualities: np.ndarray


def _points(costs, qualities) -> tuple[np.ndarray, np.ndarray]:
    """1-D float arrays of equal, non-zero length; NaN or inf raises, since a hole would silently bend a curve."""
    c = np.atleast_1d(np.asarray(costs, dtype=float))
    q = np.atleast_1d(np.asarray(qualities, dtype=float))
    if c.ndim != 1 or q.ndim != 1 or c.shape != q.shape:
        raise ValueError(f"costs and qualities must be 1-D of equal length, got {c.shape} and {q.shape}")
    if c.size == 0:
        raise ValueError("need at least one operating point")
    if not (np.isfinite(c).all() and np.isfinite(q).all()):
        raise ValueError("costs and qualities must be finite (no NaN or inf)")
    return c, q


def _best_per_cost(c: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort by cost and keep the best quality among equal costs: the worse twin is never worth choosing."""
    order = np.lexsort((-q, c))  # by cost, then best quality first
    c, q = c[order], q[order]
    first = np.r_[True, c[1:] != c[:-1]]
    return c[first], q[first]


def _upper_hull(c: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Indices of the upper convex hull of points with strictly increasing cost (monotone chain, collinear dropped).

    A stack walk rather than a vectorised op: it is O(n) and n (knob settings) is small."""
    keep: list[int] = []
    for i in range(c.size):
        while len(keep) >= 2:
            o, a = keep[-2], keep[-1]
            # a lies on or below the chord o -> i when the turn o, a, i is not clockwise.
            cross = (c[a] - c[o]) * (q[i] - q[o]) - (q[a] - q[o]) * (c[i] - c[o])
            if cross < 0:
                break
            keep.pop()
        keep.append(i)
    return np.asarray(keep, dtype=int)


def _area(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] of the linear interpolation of (x, y), flat beyond both ends (x sorted)."""
    if hi <= lo:
        return 0.0
    grid = np.concatenate(([lo], x[(x > lo) & (x < hi)], [hi]))
    return float(np.trapezoid(np.interp(grid, x, y), grid))


# Mean USD/query of the cheapest and dearest single model closer than this (relative) leave no budget axis.
NARROW_COST_RANGE = 0.01


def cost_range_too_narrow(c_lo: float, c_hi: float, rel: float = NARROW_COST_RANGE) -> bool:
    """True when [c_lo, c_hi] (USD/query) cannot carry a budget axis: not finite, not positive, or its two ends
    within `rel` of each other (models with equal prices). AIQ and budget sweeps are then not defined: such a
    suite is compared on accuracy alone."""
    c_lo, c_hi = float(c_lo), float(c_hi)
    if not (np.isfinite(c_lo) and np.isfinite(c_hi)) or c_hi <= 0:
        return True
    return c_hi - c_lo <= rel * c_hi


def _check_range(lo: float, hi: float) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"need a finite range with hi > lo, got [{lo}, {hi}]")
    return lo, hi


# ---------------------------------------------------------------------------------------------------------------
# Cost-quality curves


def ndch(costs, qualities) -> Hull:
    """Non-decreasing convex hull: the qualities reachable by mixing operating points at random, keeping only
    points that buy quality. Sort by cost (ties keep the best quality), take the upper convex hull, then drop
    every point that does not beat the best quality of the cheaper points (it would cost more for no gain)."""
    c, q = _best_per_cost(*_points(costs, qualities))
    idx = _upper_hull(c, q)
    c, q = c[idx], q[idx]
    prev_best = np.maximum.accumulate(np.r_[-np.inf, q[:-1]])
    gains = q > prev_best
    return Hull(c[gains], q[gains])


def aiq(costs, qualities, c_min: float, c_max: float) -> float:
    """Average quality under the NDCH over a common [c_min, c_max]: area / (c_max - c_min).

    Right edge: the curve is extended flat to c_max (evaluation.md): spending more never lowers quality.
    Left edge: quality 0 below the cheapest NDCH point, since the system cannot operate more cheaply than that.
    This is what RouterBench's reference code does (withmartian/routerbench, evaluation/AIQ.py: the trapezoid
    starts at the first hull point but the area is divided by the whole range from cost 0), so a policy whose
    cheapest setting costs more than c_min is charged for the gap instead of being credited with quality it
    cannot deliver there."""
    c_min, c_max = _check_range(c_min, c_max)
    hc, hq = ndch(costs, qualities)
    return _area(hc, hq, max(c_min, hc[0]), c_max) / (c_max - c_min)


def normalised_auc(costs, qualities, c_lo: float, c_hi: float) -> float:
    """Mean quality of a policy's own points (not its hull) over [c_lo, c_hi], usually the cheapest and dearest
    single model's costs: linear interpolation, equal costs keep the best quality, flat extension on both ends."""
    c_lo, c_hi = _check_range(c_lo, c_hi)
    c, q = _best_per_cost(*_points(costs, qualities))
    return _area(c, q, c_lo, c_hi) / (c_hi - c_lo)
