"""A bounded load test of `emafusion serve` on loopback, against the local SmolLM2 (llama.cpp) it starts itself.

Sends N requests (default 30, distinct questions, so models are really called) with C in flight (default 4)
through the HTTP API, then prints requests per second and the routing overhead: for each request, the
latency the client saw minus the wall time the server spent inside gateway calls (model answers, judges),
so what is left is HTTP, parsing, routing (encoder), the cascade's logic, cache look-ups and budget
accounting (the first, cold request, which loads the encoder, is reported apart). For scale it also prints the latency of calling the local model directly (one answer).
Stops by itself. Run: .venv/bin/python benchmarks/bench_server.py [--requests 30] [--concurrency 4]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import diskcache
import httpx
import uvicorn
import yaml

import emafusion_core  # noqa: F401 - offline environment before litellm
from emafusion_core.config import parse_config
from emafusion_core.llm.local_server import free_port, local_llama_server
from emafusion_core.server import create_app
from emafusion_core.system import EMAFusionSystem, make_client

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "local.yaml"
TOPICS = ["a planet", "an animal", "a city", "a tree", "a metal", "a river", "a colour", "a fruit", "a country",
          "a sport", "an instrument", "a bird", "a fish", "a flower", "a mountain", "a language", "a tool",
          "a vegetable", "a gemstone", "an ocean", "a dance", "a bread", "a cheese", "a mineral", "a star",
          "an insect", "a desert", "a spice", "a game", "a boat"]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    logging.getLogger("emafusion_core").setLevel(logging.ERROR)  # judges' abstentions are expected here
    questions = [f"Name {TOPICS[i % len(TOPICS)]}. One word. ({i})" for i in range(args.requests)]
    with tempfile.TemporaryDirectory() as folder, local_llama_server(log_path=Path(folder) / "llama.log") as llama:
        doc = yaml.safe_load(EXAMPLE.read_text())
        for m in doc["models"]:
            m["api_base"], m["max_tokens"] = llama.api_base, args.max_tokens
        doc["cache_dir"] = f"{folder}/cache"
        config = parse_config(doc)
        cache = diskcache.Cache(config.cache_dir)
        system = EMAFusionSystem.build(config, client=make_client(config, cache))

        def direct(q: str) -> float:
            started = time.perf_counter()
            httpx.post(f"{llama.api_base}/chat/completions", timeout=120, json={
                "model": "smollm2", "max_tokens": args.max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": q}]}).raise_for_status()
            return time.perf_counter() - started

        direct("Hi")  # warm-up: weights paged in
        direct_s = [direct(f"Name a thing. ({i})") for i in range(5)]

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(system, None), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"

        def one(q: str):
            started = time.perf_counter()
            r = httpx.post(url, timeout=300, json={"model": "emafusion", "messages": [{"role": "user", "content": q}]})
            latency = time.perf_counter() - started
            extra = r.json().get("emafusion", {}) if r.status_code == 200 else {}
            return r.status_code, latency, extra

        try:
            cold = one("Name a colour. One word. (warm-up)")  # loads the encoder: not counted below
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, questions))
            wall = time.perf_counter() - started
        finally:
            server.should_exit = True
            thread.join(10)
            cache.close()

    ok = [(lat, extra) for status, lat, extra in results if status == 200]
    latencies = [lat for lat, _ in ok]
    overhead = [lat - extra["timing_s"]["in_model_calls"] for lat, extra in ok]
    calls = [len(extra["models_run"]) + len(extra["verdicts"]) for _, extra in ok]
    print(f"{len(results)} requests, {args.concurrency} concurrent, max_tokens {args.max_tokens}: "
          f"{sum(s == 200 for s, _, _ in results)} ok, statuses {sorted({s for s, _, _ in results})}")
    print(f"  throughput              {len(results) / wall:8.3f} requests/s ({wall:.1f} s wall)")
    print(f"  server latency          p50 {statistics.median(latencies) * 1e3:9.1f} ms   "
          f"p99 {pct(latencies, 0.99) * 1e3:9.1f} ms   ({statistics.mean(calls):.1f} gateway calls/request)")
    print(f"  routing overhead        p50 {statistics.median(overhead) * 1e3:9.1f} ms   "
          f"p99 {pct(overhead, 0.99) * 1e3:9.1f} ms   (latency minus time inside model calls)")
    print(f"  first request (cold: loads the encoder) {cold[1] * 1e3:.1f} ms, not counted above")
    print(f"  local model directly    p50 {statistics.median(direct_s) * 1e3:9.1f} ms   (one answer, no routing)")


if __name__ == "__main__":
    main()
