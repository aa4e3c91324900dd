"""A bounded load benchmark of `emafusion serve` against the stub provider (tests/stub_provider.py, a process
on 127.0.0.1 that answers at once): requests/s and the p50/p99 overhead at 1, 4 and 16 requests in flight.

Overhead per request = the latency the client saw minus the wall time the server spent inside gateway calls
(the `emafusion.timing_s.in_model_calls` field): what is left is HTTP, parsing, routing (the encoder), the
cascade's logic, cache look-ups and the budget ledger's transactions (on disk beside the cache, as in
production). Every request is a distinct question, so the stub is really called. The server runs with a
budget cap (the ledger is on the hot path) and one worker (--workers N shares the ledger; pass --workers).
Prints figures; asserts nothing about time. Run: .venv/bin/python benchmarks/bench_load.py [--requests 48]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_support import emafusion_serve, stub_config, stub_provider  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level (default 48)")
    parser.add_argument("--workers", type=int, default=1, help="emafusion serve worker processes (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, stub_provider() as stub:
        tmp = Path(tmp)
        config = stub_config(tmp / "load.yaml", stub.api_base, budget_usd=100.0, cache_dir=tmp / "cache")
        started = time.perf_counter()
        with emafusion_serve(config, tmp / "serve.log", workers=args.workers) as server:
            print(f"emafusion serve ({args.workers} worker(s)) ready in {time.perf_counter() - started:.1f} s; "
                  f"{args.requests} distinct requests per level against the stub provider")
            server.ask("warm-up request: what is 40+2?")
            print(f"{'in flight':>9} {'req/s':>7} {'p50 latency':>12} {'p50 overhead':>13} {'p99 overhead':>13} "
                  f"{'failed':>7}")
            for level in (1, 4, 16):
                texts = [f"Level {level}, question {i}: what is {i} plus {42 - i}?" for i in range(args.requests)]
                t0 = time.perf_counter()

                def one(text):
                    sent = time.perf_counter()
                    status, body, _ = server.ask(text)
                    latency = time.perf_counter() - sent
                    inside = body.get("emafusion", {}).get("timing_s", {}).get("in_model_calls", 0.0)
                    return status, latency, latency - inside

                with ThreadPoolExecutor(level) as pool:
                    results = list(pool.map(one, texts))
                wall = time.perf_counter() - t0
                ok = [r for r in results if r[0] == 200]
                over = [r[2] * 1000 for r in ok]
                lat = [r[1] * 1000 for r in ok]
                print(f"{level:>9} {len(results) / wall:>7.1f} {statistics.median(lat):>9.1f} ms "
                      f"{statistics.median(over):>10.1f} ms {pct(over, 0.99):>10.1f} ms {len(results) - len(ok):>7}")
            health = server.health()
            print(f"spent ${health['spent_usd']:.4f} of ${health['budget_usd']:.0f}, overshoot "
                  f"${health['overshoot_usd']:.6f} ({health['ledger']['backend']} ledger); stub served "
                  f"{stub.stats()['requests']} calls")


if __name__ == "__main__":
    main()
