"""Small in-memory suite tables for tests (a module, not conftest: tests/llm has its own conftest)."""
from __future__ import annotations

import pandas as pd


def tiny_tables(n_queries: int = 6):
    queries = pd.DataFrame({
        "query_id": [f"q{i}" for i in range(n_queries)],
        "benchmark": ["a" if i % 2 else "b" for i in range(n_queries)],
        "prompt": [f"question number {i}?" for i in range(n_queries)],
    })
    models = pd.DataFrame({"model": ["cheap", "dear"], "family": ["x", "y"]})
    rows = []
    for i in range(n_queries):
        rows.append(dict(query_id=f"q{i}", model="cheap", score=float(i % 3 == 0), cost_usd=0.001))
        rows.append(dict(query_id=f"q{i}", model="dear", score=1.0, cost_usd=0.01))
    return queries, pd.DataFrame(rows), models
