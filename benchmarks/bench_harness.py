"""Harness speed: one policy at one setting on routerbench's test split (target < 100 ms), and the full
frontier of every baseline over 5 seeds on one suite (target < 60 s on 2 cores).

"One setting" is decide + score of a fitted policy on the 949 test queries. Two numbers per policy: warm
(per-view work such as judge probabilities or neighbour lists already cached: what a budget slider re-runs)
and cold (a fresh view: the first setting pays for that work). Embeddings come from the disk cache (MiniLM)
when present, else the hashing encoder; embedding time is printed apart, since the cache makes it a load.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from emafusion_core.data import load_builtin
from emafusion_core.evaluation import Harness, seed_metrics
from emafusion_core.features import make_encoder


def one_setting(harness: Harness, repeats: int = 20) -> list[tuple[str, float, float]]:
    out = []
    for policy in harness.make_policies(harness.suite, harness.scorer):
        views = harness.views(0)
        fit, cal = views["fit"], views["calibrate"]
        policy.fit(harness.fit_data(fit), cal)
        hyper = policy.hypers()[-1]
        knobs = policy.knobs(hyper)
        knob = knobs[len(knobs) // 2]
        test = harness.views(0)["test"]  # fresh view: nothing cached
        ids = test.query_ids
        t0 = time.perf_counter()
        harness.scorer.score(ids, policy.decide(test, hyper, knob))
        cold = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            harness.scorer.score(ids, policy.decide(test, hyper, knob))
            times.append(time.perf_counter() - t0)
        out.append((policy.name, cold, float(np.median(times))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="routerbench")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default=None,
                        help="default: minilm if its cache holds the suite, else hashing")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()

    suite = load_builtin(args.suite)
    name = args.encoder or "minilm"  # the shipped data/embeddings make MiniLM a cache read
    t0 = time.perf_counter()
    harness = Harness(suite, make_encoder(name))
    t_embed = time.perf_counter() - t0
    print(f"{suite!r}; encoder {name} (embedding {len(suite.queries)} queries: {t_embed:.2f} s)")

    with threadpool_limits(limits=1):
        rows = one_setting(harness)
    print(f"\none policy, one setting, {args.suite} test split (target < 100 ms):")
    print(f"  {'policy':<44} {'warm ms':>8} {'cold ms':>8}")
    for policy, cold, warm in rows:
        print(f"  {policy:<44} {warm * 1e3:>8.2f} {cold * 1e3:>8.1f}")
    print(f"  slowest warm: {max(w for _, _, w in rows) * 1e3:.2f} ms; slowest cold: {max(c for _, c, _ in rows) * 1e3:.1f} ms")

    t0 = time.perf_counter()
    result = harness.run()
    t_run = time.perf_counter() - t0
    print(f"\nfull frontier of every baseline, seeds {harness.seeds} (target < 60 s): {t_run:.1f} s "
          f"({len(result.points)} test rows, {len(result.calibrate)} calibrate settings)")
    per_policy = {}
    for key, seconds in result.timings.items():
        if key != "total":
            group = "single models" if key.startswith("single:") else key
            per_policy[group] = per_policy.get(group, 0.0) + seconds
    for key, seconds in sorted(per_policy.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<44} {seconds:>6.2f} s")
    t0 = time.perf_counter()
    seed_metrics(result, n_boot=args.n_boot)
    print(f"summary with bootstrap CIs ({args.n_boot} resamples): {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
