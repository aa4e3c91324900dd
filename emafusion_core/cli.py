"""The `emafusion` command. Subcommands so far: `data check PATH`, `reproduce`."""
from __future__ import annotations

import argparse
import sys


def _data_check(args: argparse.Namespace) -> int:
    from .data import DataValidationError, load_suite

    try:
        suite = load_suite(args.path)
    except DataValidationError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    counts = suite.queries["benchmark"].value_counts().sort_index()
    print(f"ok: {suite!r}")
    for bench, n in counts.items():
        print(f"  {bench}: {n} queries")
    print(f"  models (cheapest first): {', '.join(suite.model_names)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import main as reproduce_main

    return reproduce_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emafusion", description="EMAFusion-style LLM selection: "
                                     "reproduce the results, check your own data.")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="work with suites (queries, outcomes, models tables)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate a suite folder (queries/outcomes/models as parquet or CSV)",
                                description="Validate a suite folder. Exit 0 when valid; else print the file, "
                                            "column and first offending row and exit 1.")
    check.add_argument("path", help="folder holding queries.*, outcomes.*, models.* (and optionally judgments.*)")
    check.set_defaults(func=_data_check)
    rep = sub.add_parser("reproduce", help="run every notebook with papermill (same as `make reproduce`)")
    rep.add_argument("rest", nargs=argparse.REMAINDER, help="options passed on (--quick, --only NAME ...)")
    rep.set_defaults(func=_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
