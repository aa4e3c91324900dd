"""Cost-quality metrics of routing policies (../shared/docs/evaluation.md, "Curves and scalars" and "Splits").

Pure numpy on array-likes, no pandas and no global state: the harness turns DataFrames into arrays and calls these.
A "curve" is a set of operating points (cost, quality), one per knob setting of a policy, measured on the test split.

Conventions that the evaluation doc leaves open are fixed here, each where it is used:
- AIQ left edge: quality 0 below the cheapest point of the NDCH (see `aiq`).
- APGR: flat extension beyond the measured shares; (0, q_weak) and (1, q_strong) are added only on request.
- CPT: searched on the measured span only; nan when the target is never reached.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from scipy import stats

from ..frontier import (Hull, _area, _best_per_cost, _check_range, _points, aiq, aiq_batched, ndch, ndch_batched,
                        normalised_auc, normalised_auc_batched)

__all__ = [
    "CI", "Hull", "PairedDiff",
    "ndch", "aiq", "normalised_auc", "ndch_batched", "aiq_batched", "normalised_auc_batched",
    "zero_router_hull", "hull_quality_at", "max_gain",
    "pgr", "apgr", "cpt", "ibc", "ibc_lift", "oracle_gap",
    "bootstrap_indices", "bootstrap_means", "bootstrap_ci", "bootstrap_policy_ci", "bootstrap_curve_ci",
    "paired_bootstrap", "mean_ci_over_seeds",
]


class CI(NamedTuple):
    """A point estimate with the bounds of its confidence interval."""
    estimate: float
    low: float
    high: float


class PairedDiff(NamedTuple):
    """Mean of a - b over the same queries, its bootstrap CI, and a two-sided bootstrap p-value."""
    diff: float
    low: float
    high: float
    p_value: float


def zero_router_hull(single_model_costs, single_model_qualities) -> Hull:
    """The zero router: NDCH of the single models, since flipping a biased coin between two models reaches every
    point of the segment joining them (in expectation)."""
    return ndch(single_model_costs, single_model_qualities)


def hull_quality_at(hull, cost) -> np.ndarray | float:
    """Quality of a hull at the given cost(s): linear between knots, flat beyond both ends (np.interp)."""
    hc, hq = _points(*hull)
    out = np.interp(np.asarray(cost, dtype=float), hc, hq)
    return float(out) if np.ndim(out) == 0 else out


def max_gain(costs, qualities, hull) -> float:
    """Largest quality lead of a policy's points over a hull (usually the zero router's) at the same cost.

    Negative when every point lies below the hull: the policy is then beaten by mixing single models."""
    c, q = _points(costs, qualities)
    return float(np.max(q - np.interp(c, *_points(*hull))))


# ---------------------------------------------------------------------------------------------------------------
# Binary pairs (RouteLLM style): quality as a function of the share of calls to the strong model


def pgr(quality, q_weak: float, q_strong: float) -> np.ndarray | float:
    """Performance gap recovered: 0 at the weak model's quality, 1 at the strong model's."""
    if q_strong == q_weak:
        raise ValueError("PGR is undefined when the strong and weak models have equal quality")
    out = (np.asarray(quality, dtype=float) - q_weak) / (q_strong - q_weak)
    return float(out) if np.ndim(out) == 0 else out


def _pgr_curve(shares, qualities, q_weak, q_strong, include_endpoints) -> tuple[np.ndarray, np.ndarray]:
    """(share, PGR) knots sorted by share; equal shares keep the best; optional anchors (0, weak) and (1, strong)."""
    s, q = _points(shares, qualities)
    if s.min() < 0 or s.max() > 1:
        raise ValueError("strong-call shares must lie in [0, 1]")
    if include_endpoints:
        s, q = np.r_[0.0, s, 1.0], np.r_[q_weak, q, q_strong]
    s, q = _best_per_cost(s, q)
    return s, np.asarray(pgr(q, q_weak, q_strong))


def apgr(shares, qualities, q_weak: float, q_strong: float, include_endpoints: bool = False) -> float:
    """Average PGR: area under the linear interpolation of PGR over strong-call share s in [0, 1].

    Beyond the measured shares the curve is extended flat (as in the normalised AUC). The anchors (0, q_weak)
    and (1, q_strong) are added only when include_endpoints is True: they are real operating points only if the
    router can be forced to all-weak / all-strong and those runs cost nothing extra, which the caller knows and
    this function does not. (RouteLLM integrates over the measured span only; both agree when it covers [0, 1].)"""
    s, p = _pgr_curve(shares, qualities, q_weak, q_strong, include_endpoints)
    return _area(s, p, 0.0, 1.0)


def cpt(shares, qualities, q_weak: float, q_strong: float, x, include_endpoints: bool = False):
    """Call-performance threshold: least strong-call share whose interpolated PGR reaches x (e.g. 0.5).

    Searched on the measured span only (flat extension is an area convention, not an operating point): if the
    first point already reaches x its share is returned; nan when no point reaches x. Vectorised over x."""
    s, p = _pgr_curve(shares, qualities, q_weak, q_strong, include_endpoints)
    xs = np.atleast_1d(np.asarray(x, dtype=float))
    reached = p[None, :] >= xs[:, None]
    first = np.argmax(reached, axis=1)  # first knot at or above x (0 if none: masked below)
    prev = np.maximum(first - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # first == 0 rows divide by 0; np.where discards them
        frac = (xs - p[prev]) / (p[first] - p[prev])
        out = np.where(first == 0, s[0], s[prev] + frac * (s[first] - s[prev]))
    out = np.where(reached.any(axis=1), out, np.nan)
    return float(out[0]) if np.ndim(x) == 0 else out


# ---------------------------------------------------------------------------------------------------------------
# AutoMix incremental benefit per cost, and the oracle gap


def ibc(quality, cost, q_small: float, c_small: float):
    """Incremental benefit per cost over the small model: (q - q_small) / (c - c_small).

    inf or nan (numpy division) at c == c_small, where no extra money was spent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.asarray(quality, dtype=float) - q_small) / (np.asarray(cost, dtype=float) - c_small)
    return float(out) if np.ndim(out) == 0 else out


def ibc_lift(quality, cost, q_small: float, c_small: float, q_large: float, c_large: float):
    """Relative IBC gain over the straight line from the small to the large model (AutoMix): > 0 means each
    extra dollar buys more quality than randomly mixing the two models would."""
    if c_large == c_small or q_large == q_small:
        raise ValueError("IBC_base needs a large model that differs from the small one in cost and quality")
    base = (q_large - q_small) / (c_large - c_small)
    out = (np.asarray(ibc(quality, cost, q_small, c_small)) - base) / base
    return float(out) if np.ndim(out) == 0 else out


def oracle_gap(q_policy, q_oracle):
    """Quality left on the table: q_oracle - q_policy (>= 0 when the oracle is the ceiling)."""
    out = np.asarray(q_oracle, dtype=float) - np.asarray(q_policy, dtype=float)
    return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------------------------------------------
# Uncertainty: bootstrap over queries, t-interval over seeds


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, n) matrix of query indices drawn with replacement, once, from a seeded generator."""
    if n < 1 or n_boot < 1:
        raise ValueError("need n >= 1 and n_boot >= 1")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_means(values, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Per-resample means of per-query values of shape (n, ...): result (n_boot, ...).

    The index matrix becomes a count matrix and the means one matrix product, so memory stays n_boot x n even
    when each query carries many columns (operating points x (accuracy, cost))."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[0] == 0:
        raise ValueError("need per-query values of shape (n_queries, ...)")
    if not np.isfinite(v).all():
        raise ValueError("per-query values must be finite (drop or impute missing scores first)")
    n = v.shape[0]
    idx = bootstrap_indices(n, n_boot, seed)
    counts = np.empty((n_boot, n))
    for r, row in enumerate(idx):  # one C call per resample: cache-local, no n_boot * n temporaries
        counts[r] = np.bincount(row, minlength=n)
    return (counts @ v.reshape(n, -1) / n).reshape((n_boot,) + v.shape[1:])


def _percentile_ci(estimate, draws: np.ndarray, alpha: float):
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    if np.ndim(estimate) == 0:
        return CI(float(estimate), float(low), float(high))
    return CI(np.asarray(estimate), low, high)


def bootstrap_ci(values, statistic: Callable | None = None, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, batched: bool = True) -> CI:
    """Percentile CI over queries of a statistic of the per-query means (accuracy, USD/query, a share, ...).

    values: per-query array of shape (n, ...). statistic maps the mean over queries (shape (...)) to a number;
    with batched=True it receives all resamples at once, shape (n_boot, ...), and returns (n_boot,). Default:
    the mean itself. The estimate is the statistic on the full sample, not the mean of the resamples."""
    v = np.asarray(values, dtype=float)
    means = bootstrap_means(v, n_boot, seed)
    full = v.mean(axis=0)
    if statistic is None:
        return _percentile_ci(full, means, alpha)
    if batched:
        draws = np.asarray(statistic(means))
        estimate = np.asarray(statistic(full[None]))[0]
    else:
        draws = np.array([statistic(m) for m in means])
        estimate = statistic(full)
    return _percentile_ci(estimate, draws, alpha)


def bootstrap_policy_ci(accuracy, cost, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, CI]:
    """CIs of one policy's accuracy and USD/query from the same resamples of queries (per-query arrays)."""
    acc, usd = np.asarray(accuracy, dtype=float), np.asarray(cost, dtype=float)
    if acc.shape != usd.shape or acc.ndim != 1:
        raise ValueError("accuracy and cost must be 1-D per-query arrays of equal length")
    both = np.stack([acc, usd], axis=1)
    means = bootstrap_means(both, n_boot, seed)
    full = both.mean(axis=0)
    return {"accuracy": _percentile_ci(full[0], means[:, 0], alpha),
            "cost": _percentile_ci(full[1], means[:, 1], alpha)}


def bootstrap_curve_ci(accuracy, cost, metric: Callable | tuple[Callable, ...], n_boot: int = 1000, seed: int = 0,
                       alpha: float = 0.05, batched: bool = False) -> CI | tuple[CI, ...]:
    """CI of a curve metric (AIQ, normalised AUC, max gain...) of one policy over queries.

    accuracy, cost: (n_queries, n_points) per-query outcomes at each operating point. Each resample of queries
    gives mean (cost, accuracy) per point, and metric(costs, qualities) -> float is evaluated on them. Fix any
    cost range outside the resampling (e.g. functools.partial(aiq, c_min=..., c_max=...)). With batched=True
    (as in bootstrap_ci) the metric receives all resamples at once, costs and qualities of shape
    (n_boot, n_points), and returns (n_boot,) (e.g. aiq_batched): one call instead of n_boot, same draws.
    A tuple of metrics shares one set of resamples (then the costly part) and gives a tuple of CIs."""
    acc, usd = np.asarray(accuracy, dtype=float), np.asarray(cost, dtype=float)
    if acc.shape != usd.shape or acc.ndim != 2:
        raise ValueError("accuracy and cost must be (n_queries, n_points) arrays of equal shape")
    means = bootstrap_means(np.stack([usd, acc], axis=2), n_boot, seed)  # (n_boot, n_points, 2)
    full_c, full_q = usd.mean(axis=0), acc.mean(axis=0)
    out = []
    for f in metric if isinstance(metric, tuple) else (metric,):
        if batched:
            draws = np.asarray(f(means[:, :, 0], means[:, :, 1]), dtype=float)
            estimate = float(np.asarray(f(full_c[None], full_q[None]))[0])
        else:
            draws = np.array([f(m[:, 0], m[:, 1]) for m in means])
            estimate = f(full_c, full_q)
        out.append(_percentile_ci(estimate, draws, alpha))
    return tuple(out) if isinstance(metric, tuple) else out[0]


def paired_bootstrap(a, b, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> PairedDiff:
    """Compare two policies on the same queries: mean(a - b), percentile CI, and a two-sided p-value.

    Pairing resamples whole queries, so the per-query correlation of the two policies is kept. The p-value is
    twice the smaller share of resampled differences on either side of 0 (capped at 1)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("a and b must be 1-D per-query arrays over the same queries")
    d = a - b
    draws = bootstrap_means(d, n_boot, seed)
    est = _percentile_ci(d.mean(), draws, alpha)
    p = min(1.0, 2.0 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    return PairedDiff(est.estimate, est.low, est.high, float(p))


def mean_ci_over_seeds(values, alpha: float = 0.05) -> CI:
    """Mean over seeds with a Student-t interval (few seeds, so not a normal one); nan bounds for one seed."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("need at least one finite value")
    mean = float(v.mean())
    if v.size < 2:
        return CI(mean, float("nan"), float("nan"))
    half = stats.t.ppf(1 - alpha / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return CI(mean, float(mean - half), float(mean + half))
