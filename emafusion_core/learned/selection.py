"""Top-k selection under a cost constraint, vectorised over a batch of predicted score rows.

Pure numpy and free of the network, so the replay harness can sweep k and lambda over one matrix of
predictions without building Route objects or re-running the model.
"""
from __future__ import annotations

import numpy as np


def check_costs(costs) -> np.ndarray:
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 1 or len(costs) == 0:
        raise ValueError(f"model costs must be a non-empty 1-d array, got shape {costs.shape}")
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ValueError(f"model costs must be finite and >= 0, got {costs.tolist()}")
    return costs


def normalised_costs(costs) -> np.ndarray:
    """Costs divided by the dearest model's, so lambda is on the same [0, 1] scale as a score (our default)."""
    costs = check_costs(costs)
    top = costs.max()
    return costs / top if top > 0 else np.zeros_like(costs)


def allowed_models(costs, max_cost_usd: float | None) -> np.ndarray:
    """Mask of models whose expected per-query cost is within the budget (all when there is none)."""
    costs = check_costs(costs)
    if max_cost_usd is None:
        return np.ones(len(costs), bool)
    if not np.isfinite(max_cost_usd) or max_cost_usd < 0:
        raise ValueError(f"max_cost_usd must be a finite number >= 0 or None, got {max_cost_usd}")
    allowed = costs <= max_cost_usd
    if not allowed.any():
        raise ValueError(f"max_cost_usd={max_cost_usd} excludes every model (cheapest expects {costs.min():.3g} USD)")
    return allowed


def select_top_k(predicted, costs, k: int = 3, cost_weight: float = 0.0,
                 max_cost_usd: float | None = None) -> np.ndarray:
    """Indices (n, min(k, allowed models)) of the models maximising predicted - cost_weight * normalised cost.

    Models above max_cost_usd are never chosen. Ties in utility go to the cheaper model. Each row of the
    result is ordered cheapest first (the cascade's order), not by utility.
    """
    predicted = np.asarray(predicted, dtype=float)
    costs = check_costs(costs)
    if predicted.ndim != 2 or predicted.shape[1] != len(costs):
        raise ValueError(f"predicted must be (n, {len(costs)}), got shape {predicted.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not np.isfinite(cost_weight) or cost_weight < 0:
        raise ValueError(f"cost_weight must be a finite number >= 0, got {cost_weight}")
    allowed = allowed_models(costs, max_cost_usd)

    by_cost = np.argsort(costs, kind="stable")  # column order cheapest first; ties keep the given order
    utility = predicted[:, by_cost] - cost_weight * normalised_costs(costs)[by_cost][None, :]
    utility[:, ~allowed[by_cost]] = -np.inf
    k_eff = min(int(k), int(allowed.sum()))
    # A stable sort on -utility keeps the cheaper model first among equal utilities.
    ranked = np.argsort(-utility, axis=1, kind="stable")[:, :k_eff]
    return by_cost[np.sort(ranked, axis=1)]  # positions in by_cost ascend = cheapest first


def as_mask(indices: np.ndarray, n_models: int) -> np.ndarray:
    """(n, k) chosen indices -> (n, n_models) bool mask, the harness's 'ran' shape."""
    mask = np.zeros((len(indices), n_models), bool)
    np.put_along_axis(mask, np.asarray(indices, dtype=int), True, axis=1)
    return mask
