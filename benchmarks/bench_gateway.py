"""How much the LLM gateway costs on top of litellm: cache-hit latency and per-call overhead.

Overhead is measured twice: against litellm's mock_response (no network, so the difference is all ours:
cache key, cache read and write, budget, pricing, the loop hop) and against the local SmolLM2 server
(end to end, noisier). Run: .venv/bin/python benchmarks/bench_gateway.py [--no-server]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import diskcache

import emafusion_core  # noqa: F401 - offline environment before litellm
from emafusion_core.llm import Budget, LLMClient, Pricer
from emafusion_core.llm._litellm import litellm
from emafusion_core.llm._loop import shared_loop
from emafusion_core.llm.local_server import local_llama_server

MOCK_MODEL = "gpt-4o-mini"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def ms(x: float) -> str:
    return f"{x * 1e3:8.3f} ms"


def bench_mock(n_calls: int, n_hits: int, folder: str) -> None:
    cache = diskcache.Cache(f"{folder}/mock")
    msgs = lambda i: [{"role": "user", "content": f"question {i}"}]  # noqa: E731
    loop = shared_loop()  # the loop the gateway's blocking calls run on, so the async baseline is like for like
    bare_sync = timed(lambda i: litellm.completion(model=MOCK_MODEL, messages=msgs(i), max_tokens=20,
                                                   mock_response="ok"), n_calls)
    bare_async = timed(lambda i: loop.run(litellm.acompletion(
        model=MOCK_MODEL, messages=msgs(i), max_tokens=20, mock_response="ok")), n_calls)
    client = LLMClient(cache, mode="live", pricer=Pricer(), budget=Budget(100.0), progress=False,
                       endpoints={MOCK_MODEL: {"mock_response": "ok"}})
    client.complete(MOCK_MODEL, msgs(-1), max_tokens=20)  # warm-up
    misses = timed(lambda i: client.complete(MOCK_MODEL, msgs(i), max_tokens=20), n_calls)
    hits = timed(lambda i: client.complete(MOCK_MODEL, msgs(i % n_calls), max_tokens=20), n_hits)
    assert client.stats.hits == n_hits and client.stats.calls == n_calls + 1
    cache.close()
    print(f"mock_response, {n_calls} calls, {n_hits} cache hits")
    print(f"  bare litellm.completion      p50 {ms(statistics.median(bare_sync))}")
    print(f"  bare litellm.acompletion     p50 {ms(statistics.median(bare_async))}")
    print(f"  gateway miss (call + record) p50 {ms(statistics.median(misses))}  p99 {ms(pct(misses, 0.99))}")
    for name, bare in (("litellm.acompletion", bare_async), ("litellm.completion", bare_sync)):
        print(f"  overhead over {name:19s} p50 {ms(statistics.median(misses) - statistics.median(bare))}")
    print(f"  cache hit                    p50 {ms(statistics.median(hits))}  p99 {ms(pct(hits, 0.99))}")


def bench_server(n_calls: int, folder: str) -> None:
    started = time.perf_counter()
    with local_llama_server(log_path=f"{folder}/server.log") as server:
        ready = time.perf_counter() - started
        ask = lambda i: [{"role": "user", "content": f"Say the number {i}."}]  # noqa: E731
        call = dict(temperature=0, max_tokens=4)
        cache = diskcache.Cache(f"{folder}/server")
        client = LLMClient(cache, mode="refresh", pricer=Pricer({server.model: (0.0, 0.0)}), progress=False,
                           endpoints={server.model: server.endpoint()})

        def through(i):
            try:
                client.complete(server.model, ask(i), **call)
            except Exception as exc:  # noqa: BLE001 - a truncated reply still measures the path
                assert getattr(exc, "kind", "") == "truncated", exc

        def bare(i):
            litellm.completion(model=server.model, messages=ask(i), **call, **server.endpoint())

        bare(-1), through(-1)  # warm-up (the first decode pages the weights in)
        both = timed(lambda i: (bare, through)[i % 2](i // 2), 2 * n_calls)  # interleaved: same machine load
        bare_t, gateway = both[0::2], both[1::2]
        cache.close()
    print(f"local SmolLM2 server (ready in {ready:.2f} s), {n_calls} calls of max_tokens=4")
    print(f"  bare litellm.completion      p50 {ms(statistics.median(bare_t))}")
    print(f"  gateway (refresh mode)       p50 {ms(statistics.median(gateway))}")
    print(f"  gateway overhead per call    p50 {ms(statistics.median(gateway) - statistics.median(bare_t))}"
          "  (noisy: model time dominates)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--server-calls", type=int, default=10)
    parser.add_argument("--no-server", action="store_true", help="skip the local llama.cpp server part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as folder:
        bench_mock(args.calls, args.hits, folder)
        if not args.no_server:
            bench_server(args.server_calls, folder)


if __name__ == "__main__":
    main()
