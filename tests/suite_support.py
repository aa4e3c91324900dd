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


def user_style_tables(n_per_benchmark: int = 40, benchmarks=("Support-Tickets", "Legal_QA"), equal_prices=False,
                      seed: int = 0):
    """A suite as a user would bring it: CSV-ready tables, no responses, no taxonomy label columns, benchmark
    names in mixed case, three models of two families. equal_prices: every model costs the same per query."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = {"Support-Tickets": "printer login password refund invoice account shipping",
             "Legal_QA": "contract clause liability tenant statute court appeal",
             "GSM8K": "apples train speed hours total price sum",
             "ARC_Challenge": "energy plant cell gravity rock water magnet"}
    queries, rows = [], []
    models = pd.DataFrame({"model": ["small-a", "mid-b", "large-c"], "family": ["a", "b", "c"]})
    skill = {"small-a": 0.45, "mid-b": 0.65, "large-c": 0.85}
    price = {"small-a": 0.0002, "mid-b": 0.001, "large-c": 0.006}
    for b, bench in enumerate(benchmarks):
        vocab = words.get(bench, "alpha beta gamma delta epsilon zeta eta").split()
        for i in range(n_per_benchmark):
            qid = f"{bench.lower()}-{i:03d}"
            text = " ".join(rng.choice(vocab, size=8)) + f" case {i}?"
            queries.append(dict(query_id=qid, benchmark=bench, prompt=text))
            for m in models["model"]:
                p = skill[m] + (0.1 if (b == 1) == (m == "mid-b") else 0.0)
                cost = 0.001 if equal_prices else price[m] * (1 + 0.2 * rng.random())
                rows.append(dict(query_id=qid, model=m, score=float(rng.random() < p), cost_usd=cost))
    return pd.DataFrame(queries), pd.DataFrame(rows), models


def write_suite(folder, queries, outcomes, models):
    folder.mkdir(parents=True)
    queries.to_csv(folder / "queries.csv", index=False)
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    models.to_csv(folder / "models.csv", index=False)
    return folder


def split_sets(suite, encoder, parts=("fit", "calibrate", "test"), seed: int = 0) -> dict:
    """The suite's TrainingSets per split (seeded splits), each with its questions embedded by `encoder`."""
    from emafusion_core.data import make_splits, split_ids, training_set

    splits = make_splits(suite.queries, suite.name, seed)
    sets = {}
    for part in parts:
        ids = list(split_ids(splits, part))
        texts = suite.queries.set_index("query_id").loc[ids, "question"].tolist()
        sets[part] = training_set(suite, ids, embeddings=encoder.encode(texts), split=part, seed=seed)
    return sets
