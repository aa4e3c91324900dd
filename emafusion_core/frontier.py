"""The cost-quality frontier of a set of operating points: NDCH and AIQ (../shared/docs/evaluation.md).

Core (not evaluation/) because calibration uses them too: the method picks its structural knobs by AIQ on
the calibrate split with the same code the harness reports on test. Pure numpy.
- AIQ left edge: quality 0 below the cheapest point of the NDCH (see `aiq`).
- One implementation per idea, on (B, P) rows: `*_batched` evaluate B curves (bootstrap resamples) in one pass,
  and the scalar functions are their one-row case.
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


def _rows(costs, qualities) -> tuple[np.ndarray, np.ndarray]:
    """(B, P) float arrays of equal shape, P >= 1, finite: B curves (e.g. bootstrap resamples) of P points each."""
    c, q = np.asarray(costs, dtype=float), np.asarray(qualities, dtype=float)
    if c.ndim != 2 or c.shape != q.shape or c.shape[1] == 0:
        raise ValueError(f"costs and qualities must be (B, P) arrays of equal shape, P >= 1: {c.shape}, {q.shape}")
    if not (np.isfinite(c).all() and np.isfinite(q).all()):
        raise ValueError("costs and qualities must be finite (no NaN or inf)")
    return c, q


def _sort_rows(c: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row sorted by cost, best quality first among equal costs, and the mask of each cost's first (best)
    point: the worse twin at an equal cost is never worth choosing."""
    order = np.lexsort((-q, c), axis=-1)
    c, q = np.take_along_axis(c, order, -1), np.take_along_axis(q, order, -1)
    first = np.ones(c.shape, dtype=bool)
    first[:, 1:] = c[:, 1:] != c[:, :-1]
    return c, q, first


def _best_per_cost(c: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-D points sorted by cost, keeping the best quality among equal costs."""
    c, q, first = _sort_rows(c[None], q[None])
    return c[first], q[first]


def _ndch_mask(c: np.ndarray, q: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Mask of the NDCH knots of rows sorted by _sort_rows: the upper convex hull of each row's `first` points
    (monotone chain, collinear points dropped), then only the knots that beat every cheaper knot.

    The chain runs over the P points in lockstep for all B rows, each pop a vectorised step over the rows that
    still need one: P (knob settings) is small, B (resamples) is large, so this is O(P^2) numpy calls, not B."""
    n_rows, n_pts = c.shape
    rows = np.arange(n_rows)
    stack = np.zeros((n_rows, n_pts), dtype=int)  # each row's hull so far (indices into the row)
    height = np.zeros(n_rows, dtype=int)
    for i in range(n_pts):
        ci, qi = c[:, i], q[:, i]
        todo = rows[first[:, i] & (height >= 2)]  # a worse twin neither pops nor is pushed
        while todo.size:
            h = height[todo]
            o, a = stack[todo, h - 2], stack[todo, h - 1]
            co, qo = c[todo, o], q[todo, o]
            # a lies on or below the chord o -> i when the turn o, a, i is not clockwise: pop it.
            cross = (c[todo, a] - co) * (qi[todo] - qo) - (q[todo, a] - qo) * (ci[todo] - co)
            todo = todo[cross >= 0]
            height[todo] -= 1
            todo = todo[height[todo] >= 2]
        push = rows[first[:, i]]
        stack[push, height[push]] = i
        height[push] += 1
    on_hull = np.zeros((n_rows, n_pts), dtype=bool)
    r, k = np.nonzero(np.arange(n_pts) < height[:, None])
    on_hull[r, stack[r, k]] = True
    best_before = np.maximum.accumulate(np.where(on_hull, q, -np.inf), axis=1)
    prev_best = np.concatenate([np.full((n_rows, 1), -np.inf), best_before[:, :-1]], axis=1)
    return on_hull & (q > prev_best)


def _knots(c: np.ndarray, q: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The masked points of each row moved to the front, the rest of the row filled with its last knot: rows of
    different lengths in one (B, P) array, the padding adding zero-width segments (nothing to an area)."""
    order = np.argsort(~mask, axis=1, kind="stable")
    pos = np.minimum(np.arange(c.shape[1]), mask.sum(axis=1, keepdims=True) - 1)
    order = np.take_along_axis(order, pos, 1)
    return np.take_along_axis(c, order, 1), np.take_along_axis(q, order, 1)


def _area_rows(x: np.ndarray, y: np.ndarray, lo, hi) -> np.ndarray:
    """Exact integral over [lo, hi] of each row's linear interpolation of (x, y), flat beyond both ends (rows of
    x sorted; lo, hi scalars or (B,)). Each segment is clipped to [lo, hi] and integrated by the trapezoid on its
    interpolated ends; the flat parts left of the first and right of the last knot are added apart."""
    lo = np.broadcast_to(np.asarray(lo, dtype=float), x.shape[:1])
    hi = np.maximum(np.broadcast_to(np.asarray(hi, dtype=float), x.shape[:1]), lo)  # hi <= lo: area 0
    x0, x1, y0, y1 = x[:, :-1], x[:, 1:], y[:, :-1], y[:, 1:]
    u, v = np.clip(x0, lo[:, None], hi[:, None]), np.clip(x1, lo[:, None], hi[:, None])
    width = x1 - x0
    slope = np.divide(y1 - y0, width, out=np.zeros_like(width), where=width > 0)
    inner = ((v - u) * ((y0 + slope * (u - x0)) + (y0 + slope * (v - x0))) / 2).sum(axis=1)
    left = np.maximum(np.minimum(x[:, 0], hi) - lo, 0) * y[:, 0]
    right = np.maximum(hi - np.maximum(x[:, -1], lo), 0) * y[:, -1]
    return inner + left + right


def _area(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] of the linear interpolation of (x, y), flat beyond both ends (x sorted)."""
    return float(_area_rows(x[None], y[None], lo, hi)[0])


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


def ndch_batched(costs, qualities) -> Hull:
    """NDCH of each row of (B, P) costs and qualities (see `ndch`), as (B, P) knots: each row's knots first, the
    rest of the row repeating its last knot (zero-width segments), so areas and interpolation are unchanged."""
    c, q, first = _sort_rows(*_rows(costs, qualities))
    return Hull(*_knots(c, q, _ndch_mask(c, q, first)))


def ndch(costs, qualities) -> Hull:
    """Non-decreasing convex hull: the qualities reachable by mixing operating points at random, keeping only
    points that buy quality. Sort by cost (ties keep the best quality), take the upper convex hull, then drop
    every point that does not beat the best quality of the cheaper points (it would cost more for no gain)."""
    c, q = _points(costs, qualities)
    c, q, first = _sort_rows(c[None], q[None])
    keep = _ndch_mask(c, q, first)
    return Hull(c[keep], q[keep])


def aiq_batched(costs, qualities, c_min: float, c_max: float) -> np.ndarray:
    """AIQ (see `aiq`) of each row of (B, P) costs and qualities, e.g. B bootstrap resamples of one policy's
    P points: (B,), one vectorised pass instead of B Python calls."""
    c_min, c_max = _check_range(c_min, c_max)
    hc, hq = ndch_batched(costs, qualities)
    return _area_rows(hc, hq, np.maximum(c_min, hc[:, 0]), c_max) / (c_max - c_min)


def aiq(costs, qualities, c_min: float, c_max: float) -> float:
    """Average quality under the NDCH over a common [c_min, c_max]: area / (c_max - c_min).

    Right edge: the curve is extended flat to c_max (evaluation.md): spending more never lowers quality.
    Left edge: quality 0 below the cheapest NDCH point, since the system cannot operate more cheaply than that.
    This is what RouterBench's reference code does (withmartian/routerbench, evaluation/AIQ.py: the trapezoid
    starts at the first hull point but the area is divided by the whole range from cost 0), so a policy whose
    cheapest setting costs more than c_min is charged for the gap instead of being credited with quality it
    cannot deliver there. One row of `aiq_batched`."""
    c, q = _points(costs, qualities)
    return float(aiq_batched(c[None], q[None], c_min, c_max)[0])


def normalised_auc_batched(costs, qualities, c_lo: float, c_hi: float) -> np.ndarray:
    """Normalised AUC (see `normalised_auc`) of each row of (B, P) costs and qualities: (B,)."""
    c_lo, c_hi = _check_range(c_lo, c_hi)
    c, q, first = _sort_rows(*_rows(costs, qualities))
    return _area_rows(*_knots(c, q, first), c_lo, c_hi) / (c_hi - c_lo)


def normalised_auc(costs, qualities, c_lo: float, c_hi: float) -> float:
    """Mean quality of a policy's own points (not its hull) over [c_lo, c_hi], usually the cheapest and dearest
    single model's costs: linear interpolation, equal costs keep the best quality, flat extension on both ends.
    One row of `normalised_auc_batched`."""
    c, q = _points(costs, qualities)
    return float(normalised_auc_batched(c[None], q[None], c_lo, c_hi)[0])
