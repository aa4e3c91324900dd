"""Summary speed: seconds per seed of `seed_metrics` (AIQ / nAUC with bootstrap CIs over test queries) on one
suite, with the batched curve metrics (one vectorised call per (policy, metric) for all resamples) and with the
scalar ones called once per resample (the reference the batched ones are tested against).

The harness run itself (hashing encoder, one seed) is printed apart: only the summary is timed per seed.
"""
from __future__ import annotations

import argparse
import time

from emafusion_core.data import load_builtin
from emafusion_core.evaluation import Harness, seed_metrics
from emafusion_core.features import make_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="routerbench")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--no-scalar", action="store_true", help="skip the (slow) scalar reference")
    args = parser.parse_args()

    harness = Harness(load_builtin(args.suite), make_encoder("hashing"), seeds=list(range(args.seeds)))
    t0 = time.perf_counter()
    result = harness.run()
    print(f"{args.suite}: harness run, seeds {harness.seeds}: {time.perf_counter() - t0:.1f} s "
          f"({len({r.policy for r in result.runs})} policies)")
    for batched in [True] if args.no_scalar else [True, False]:
        t0 = time.perf_counter()
        seed_metrics(result, n_boot=args.n_boot, batched=batched)
        label = "batched metrics" if batched else "scalar metrics, one call per resample"
        print(f"  seed_metrics, {args.n_boot} resamples, {label}: {(time.perf_counter() - t0) / args.seeds:.2f} s per seed")


if __name__ == "__main__":
    main()
