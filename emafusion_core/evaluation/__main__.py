"""`python -m emafusion_core.evaluation --suite routerbench`: every baseline on seeds 0-4, written to figures/.

Writes figures/baselines_<suite>.csv (test rows: one per policy, seed and budget) and
figures/baselines_<suite>_summary.csv (one row per policy, the oracle and the zero-router hull included),
and prints the AIQ / normalised AUC table. Everything is seeded: a rerun writes identical files.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import sys

from ..data import BUILTIN_SUITES, DEFAULT_SEEDS, DataValidationError
from ..data.check import resolve_suite
from ..features import make_encoder
from .emafusion import emafusion_policies
from .harness import Harness, default_policies
from .summary import format_details, format_table, seed_metrics, summarise, with_unavailable
from .tables import FLOAT_FORMAT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emafusion_core.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="routerbench",
                        help=f"one of {BUILTIN_SUITES}, a suite folder under data/, or a path to a suite folder")
    parser.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--budgets", type=int, default=25, help="number of log-spaced budgets per policy")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--holdout", default=None, help="out-of-distribution check: leave this benchmark out of "
                        "fit and calibrate, test on it (files get an _ood-<benchmark> suffix)")
    parser.add_argument("--no-emafusion", action="store_true", help="baselines only (skip the six EMAFusion variants)")
    parser.add_argument("--out", type=Path, default=Path("figures"))
    args = parser.parse_args(argv)

    try:
        suite = resolve_suite(args.suite)
    except DataValidationError as exc:
        print(f"invalid suite: {exc}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    families = dict(zip(suite.models["model"], suite.models["family"]))
    policies = None if args.no_emafusion else (
        lambda s, scorer: default_policies(s, scorer) + emafusion_policies(families))
    harness = Harness(suite, make_encoder(args.encoder), seeds=args.seeds, n_budgets=args.budgets,
                      policies=policies,
                      holdout=args.holdout)
    t_embed = time.perf_counter() - t0
    result = harness.run()
    t1 = time.perf_counter()
    summary = summarise(seed_metrics(result, n_boot=args.n_boot))
    t_summary = time.perf_counter() - t1

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"baselines_{suite.name}" + (f"_ood-{args.holdout}" if args.holdout else "")
    points_path = args.out / f"{stem}.csv"
    summary_path = args.out / f"{stem}_summary.csv"
    result.points.to_csv(points_path, index=False, float_format=FLOAT_FORMAT)
    with_unavailable(summary, result).to_csv(summary_path, index=False, float_format=FLOAT_FORMAT)

    held = f"; {args.holdout} held out of fit and calibrate, tested alone" if args.holdout else ""
    print(f"{suite!r}, encoder {args.encoder}, seeds {args.seeds}{held}; test split; AIQ and nAUC over "
          f"[cheapest, dearest single model USD/query] = [{summary['c_min'].mean():.3g}, {summary['c_max'].mean():.3g}]")
    print(format_table(summary))
    print()
    print(format_details(result, summary))
    for policy, why in result.unavailable.items():
        print(f"unavailable: {policy}: {why}")
    for text in result.notices:
        if not any(text.startswith(p) for p in result.unavailable):
            print(f"notice: {text}")
    print(f"\nembed {t_embed:.1f} s, harness {result.timings['total']:.1f} s, summary (bootstrap "
          f"{args.n_boot}) {t_summary:.1f} s; wrote {points_path} and {summary_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
