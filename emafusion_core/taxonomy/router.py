"""TaxonomyRouter: keep the models whose suitability Phi passes tau_c, cheapest first.

familiar(x) iff the fused classifier's confidence >= tau_fam and the candidate set is non-empty (our
default for the paper's "familiar queries"). With no model passing tau_c, the taxonomy router alone
falls back to the single most suitable model and says so (path "taxonomy-fallback").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..execution import Query
from ..routing import Route
from .classifiers import Probs, confidence, fuse, top_labels
from .schema import Taxonomy
from .suitability import SuitabilityTable


@dataclass
class TaxonomyDecision:
    """Vectorised routing result for a batch (what the harness consumes without building Routes)."""

    keep: np.ndarray  # (n, m) bool: model passes tau_c
    phi: np.ndarray  # (n, m)
    confidence: np.ndarray  # (n,)
    familiar: np.ndarray  # (n,) bool
    primary: np.ndarray  # (n,) int: cheapest kept model, else the most suitable


class TaxonomyRouter:
    def __init__(self, taxonomy: Taxonomy, fast, suitability: SuitabilityTable, model_costs,
                 tau_c: float = 0.7, tau_fam: float = 0.6, lam: float = 0.0, slow=None, max_candidates: int = 3):
        """model_costs: expected USD per query of each model (suitability.model_names order).
        max_candidates: the cascade's length (paper default k = 3): the cheapest proficient models, and the
        most suitable one as the last resort."""
        self.taxonomy, self.fast, self.suitability, self.slow = taxonomy, fast, suitability, slow
        self.model_names = suitability.model_names
        self.model_costs = np.asarray(model_costs, float)
        if len(self.model_costs) != len(self.model_names):
            raise ValueError("model_costs must have one entry per model")
        self.order = np.argsort(self.model_costs, kind="stable")  # cheapest first
        self.tau_c, self.tau_fam, self.lam = tau_c, tau_fam, lam
        if max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        self.max_candidates = max_candidates

    def probabilities(self, queries: Sequence[Query]) -> tuple[Probs, float]:
        """Fused label probabilities and the USD the slow classifier spent on them."""
        texts = [q.text for q in queries]
        p_fast = self.fast.predict_proba(texts)
        if self.slow is None or self.lam == 0.0:
            return p_fast, 0.0
        p_slow, ok, cost = self.slow.predict_proba(queries)
        return fuse(p_fast, p_slow, self.lam, ok), cost

    def decide(self, probs: Probs, tau_c: float | None = None, tau_fam: float | None = None) -> TaxonomyDecision:
        tau_c = self.tau_c if tau_c is None else tau_c
        tau_fam = self.tau_fam if tau_fam is None else tau_fam
        phi = self.suitability.phi(probs)
        keep = phi >= tau_c
        conf = confidence(probs)
        familiar = (conf >= tau_fam) & keep.any(axis=1)
        # cheapest kept model: first True in cost order; none kept -> most suitable
        kept_in_order = keep[:, self.order]
        first = np.where(kept_in_order.any(axis=1), self.order[kept_in_order.argmax(axis=1)], phi.argmax(axis=1))
        return TaxonomyDecision(keep, phi, conf, familiar, first)

    def chains(self, d: TaxonomyDecision, k: int | None = None) -> np.ndarray:
        """(n, max_candidates) model indices for the cascade, cheapest first, -1 padded: the cheapest
        (max_candidates - 1) proficient models plus the most suitable proficient one as the last resort;
        with none proficient, the most suitable model alone."""
        k = self.max_candidates if k is None else k
        out = np.full((len(d.phi), k), -1)
        best = d.phi.argmax(axis=1)
        for i in range(len(d.phi)):
            kept = self.order[d.keep[i, self.order]].tolist()
            if not kept:
                out[i, 0] = best[i]
                continue
            top = max(kept, key=lambda j: (d.phi[i, j], -self.model_costs[j]))
            chain = [j for j in kept if j != top][: k - 1] + [top]
            chain.sort(key=lambda j: self.model_costs[j])
            out[i, : len(chain)] = chain
        return out

    def route_batch(self, queries: Sequence[Query]) -> list[Route]:
        if len(queries) == 0:
            return []
        probs, slow_cost = self.probabilities(queries)
        d = self.decide(probs)
        chains = self.chains(d)
        labels = top_labels(probs, self.taxonomy)
        per_query_cost = slow_cost / max(len(queries), 1)
        routes = []
        for i in range(len(queries)):
            kept = d.keep[i].any()
            primary = self.model_names[d.primary[i]]
            routes.append(Route(
                candidates=tuple(self.model_names[j] for j in chains[i] if j >= 0),
                path="taxonomy" if kept else "taxonomy-fallback",
                router_cost_usd=per_query_cost, primary=primary,
                info={"labels": labels.iloc[i].to_dict(), "confidence": float(d.confidence[i]),
                      "familiar": bool(d.familiar[i]),
                      "phi": dict(zip(self.model_names, np.round(d.phi[i], 4).tolist()))}))
        return routes
