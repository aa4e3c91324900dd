"""Collection throughput of `emafusion collect` against the local SmolLM2 server: calls per second at a few
concurrency levels (fresh cache each), then a rerun from the cache. The gateway's own cost per call is
bench_gateway.py's number (about a millisecond over litellm): next to a model call it is noise.

Run: .venv/bin/python benchmarks/bench_collect.py [--queries 16] [--concurrency 1 2 4]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import diskcache
import pandas as pd

import emafusion_core  # noqa: F401 - offline environment before litellm
from emafusion_core.collect import Scorer, collect, parse_queries
from emafusion_core.config import parse_config
from emafusion_core.llm.local_server import local_llama_server
from emafusion_core.system import make_client

ROOT = Path(__file__).resolve().parents[1]


def pool(api_base: str, cache_dir: str):
    model = {"litellm_model": "openai/smollm2", "api_base": api_base, "family": "local"}
    return parse_config({"models": [
        {**model, "name": "terse", "system_prompt": "Answer with as few words as possible.", "max_tokens": 16,
         "price": {"input": 0.1, "output": 0.1}},
        {**model, "name": "careful", "system_prompt": "You are an expert. Think about the question, then answer it.",
         "max_tokens": 32, "price": {"input": 5, "output": 15}}], "cache_dir": cache_dir})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = [json.loads(line) for line in (ROOT / "examples/collect/queries.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["scorer"] != "judge"][:: max(1, 80 // args.queries)][: args.queries]
    query_set = parse_queries(pd.DataFrame(rows).fillna("").astype(str))
    with local_llama_server() as server:
        for concurrency in args.concurrency:
            with tempfile.TemporaryDirectory() as tmp:
                config = pool(server.api_base, tmp)
                cache = diskcache.Cache(tmp)
                client = make_client(config, cache, concurrency=concurrency, reuse_failures=True)
                got = collect(config, query_set, client, Scorer(), "bench")
                t0 = time.perf_counter()
                again = collect(config, query_set, make_client(config, cache, reuse_failures=True), Scorer(), "bench")
                rerun = time.perf_counter() - t0
                cache.close()
            n = len(got.suite.outcomes)
            tokens = int(got.suite.outcomes["output_tokens"].sum())
            print(f"concurrency {concurrency} per model: {n} calls in {got.seconds:.1f} s = {n / got.seconds:.2f} "
                  f"calls/s ({tokens / got.seconds:.0f} output tokens/s, scoring included); rerun from the cache "
                  f"{rerun:.2f} s ({n / rerun:.0f} outcomes/s, ${again.spent_usd:.2f})")


if __name__ == "__main__":
    main()
