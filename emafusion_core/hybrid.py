"""HybridRouter: the taxonomy router for familiar queries, the learned router for the rest.

Every query is classified first (the taxonomy's confidence decides the path), so the classifier's cost
is charged on every query; the learned router runs only on the ambiguous ones.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .execution import Query
from .routing import Route, Router
from .taxonomy import TaxonomyRouter


class HybridRouter:
    def __init__(self, taxonomy: TaxonomyRouter, learned: Router):
        self.taxonomy, self.learned = taxonomy, learned

    def route_batch(self, queries: Sequence[Query]) -> list[Route]:
        routes = self.taxonomy.route_batch(queries)
        ambiguous = [i for i, r in enumerate(routes) if not r.info.get("familiar", False)]
        if ambiguous:
            learned = self.learned.route_batch([queries[i] for i in ambiguous])
            for i, route in zip(ambiguous, learned, strict=True):
                taxonomy_route = routes[i]
                routes[i] = replace(route, path="learned",
                                    router_cost_usd=taxonomy_route.router_cost_usd + route.router_cost_usd,
                                    info={**route.info, "taxonomy": taxonomy_route.info})
        return routes


def path_shares(routes: Sequence[Route]) -> dict[str, float]:
    """Share of queries that took each path (reported beside every hybrid result)."""
    counts: dict[str, int] = {}
    for r in routes:
        counts[r.path] = counts.get(r.path, 0) + 1
    return {path: n / max(len(routes), 1) for path, n in sorted(counts.items())}
