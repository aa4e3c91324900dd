"""The hybrid switch sends familiar queries to the taxonomy router and the rest to the learned router."""
from __future__ import annotations

from emafusion_core.execution import Query
from emafusion_core.hybrid import HybridRouter, path_shares
from emafusion_core.routing import Route


class FakeTaxonomy:
    def __init__(self, familiar_ids, cost=0.001):
        self.familiar_ids, self.cost = set(familiar_ids), cost

    def route_batch(self, queries):
        return [Route(("cheap",), "taxonomy", self.cost, {"familiar": q.query_id in self.familiar_ids},
                      primary="cheap") for q in queries]


class RecordingLearned:
    def __init__(self):
        self.seen = []

    def route_batch(self, queries):
        self.seen.extend(q.query_id for q in queries)
        return [Route(("cheap", "dear"), "learned", 0.0, {"predicted": {}}, primary="dear") for _ in queries]


def test_familiar_to_taxonomy_ambiguous_to_learned_with_costs_charged():
    learned = RecordingLearned()
    router = HybridRouter(FakeTaxonomy({"a", "c"}), learned)
    routes = router.route_batch([Query(i, f"text {i}") for i in "abcd"])
    assert [r.path for r in routes] == ["taxonomy", "learned", "taxonomy", "learned"]
    assert learned.seen == ["b", "d"]  # the learned router never sees familiar queries
    assert routes[1].candidates == ("cheap", "dear") and routes[1].primary == "dear"
    assert all(r.router_cost_usd == 0.001 for r in routes)  # classification is paid on every query
    assert routes[1].info["taxonomy"]["familiar"] is False
    assert path_shares(routes) == {"learned": 0.5, "taxonomy": 0.5}


def test_all_familiar_never_calls_learned():
    learned = RecordingLearned()
    HybridRouter(FakeTaxonomy({"a"}), learned).route_batch([Query("a", "x")])
    assert learned.seen == []
