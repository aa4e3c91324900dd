"""Run every notebook with papermill and print the headline numbers: what `make reproduce` does.

Executed copies go to build/notebooks/ (not committed); figures and tables go to figures/.
`--quick` passes each notebook its small-scale parameters (used by the tests), `--only` picks notebooks.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import fit_cache

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

SUITES = ("routerbench", "routellm", "zeroeval", "mmlupro")
SELF_OPTIMISING_SUITES = ("mmlupro", "zeroeval", "routerbench")
DIAGNOSTIC_SEEDS = [0, 1, 2]
SHARE_SEEDS = [0, 1]  # notebook 07's other labelled shares (the claim's share runs on every seed)

# What make reproduce runs: each notebook with its parameters, the per-suite notebooks once per suite; longest
# first, so that with two jobs the long runs start at once and short runs fill in at the end. The
# out-of-distribution check of notebook 03 holds out each benchmark (mmlupro: each of its six taxonomy domains)
# with one seed, which bounds the largest loop of make reproduce.
RUNS: list[tuple[str, dict]] = [
    # the comparison (every baseline, 5 seeds: the claims) once per suite, so two suites run side by side
    *[("02_comparison", {"suites": [s]}) for s in ("zeroeval", "mmlupro", "routellm", "routerbench")],
    # suites whose judges can read answers and whose fit queries carry taxonomy labels (routellm: 91% of its
    # answers are unrecorded, so its judges are blind and there are no verdicts to learn from): the claim's 10%
    # slice on five seeds with its drift stream, the 5% and 25% slices on two; the cold start on two seeds (one
    # on mmlupro, whose calibrate sweep for the cold system takes ~20-30 s a seed)
    *[("07_self_optimising", {"suite_name": s, "label_shares": [0.05, 0.1, 0.25], "share_seeds": SHARE_SEEDS,
                              **({"cold_start_seeds": [0]} if s == "mmlupro" else {})})
      for s in SELF_OPTIMISING_SUITES],
    # local-LLM calls (its collect section on 40 queries), with one llama.cpp thread: the other core runs a notebook
    ("06_live_demo", {"collect_n": 40, "server_threads": 1}),
    # the diagnostics notebooks (router accuracy with the out-of-distribution check, judges) on three seeds
    *[(stem, {"suite_name": s, "seeds": DIAGNOSTIC_SEEDS, **({"ood_seeds": [0]} if stem == "03_router_accuracy" else {})})
      for s in ("mmlupro", "routellm", "zeroeval", "routerbench") for stem in ("04_judges", "03_router_accuracy")],
    ("01_models_table", {"suites": list(SUITES)}),
    *[("05_budget_explorer", {"suite_name": s}) for s in SUITES],
]
# --quick (the tests): smaller parameters and fewer runs, every notebook at least once (names must exist in
# the notebook's parameters cell).
QUICK_RUNS: list[tuple[str, dict]] = [
    ("01_models_table", {"suites": list(SUITES)}),
    ("02_comparison", {"suites": ["routerbench", "zeroeval"], "seeds": [0, 1], "n_budgets": 6, "n_boot": 20,
                       "sensitivity": False}),
    ("03_router_accuracy", {"suite_name": "routerbench", "seeds": [0], "ood_seeds": [0], "n_budgets": 4}),
    ("04_judges", {"suite_name": "zeroeval", "seeds": [0], "n_budgets": 4}),
    ("05_budget_explorer", {"suite_name": "routerbench"}),
    ("06_live_demo", {"collect_n": 16}),
    ("07_self_optimising", {"suite_name": "routerbench", "seeds": [0, 1], "label_shares": [0.1], "max_stream": 200,
                            "n_checkpoints": 1, "n_budgets": 3, "cold_start_seeds": [0], "cold_start_stream": 100}),
]

# What each notebook must write to out_dir ({suite}: once per suite it ran on); tables marked exact are the
# same at quick and full scale, so the tests can compare them with the committed figures/.
OUTPUTS: dict[str, dict[str, bool]] = {
    "01_models_table": {"models_table.csv": True, "winners_table.csv": True, "models_{suite}.png": False,
                        "models_{suite}.svg": False},
    "02_comparison": {"claims_{suite}.csv": False, "baselines_{suite}.csv": False, "operating_points_{suite}.json": False,
                      "frontier_{suite}.csv": False, "baselines_{suite}_summary.csv": False,
                      "frontier_gaps_{suite}.csv": False,
                      "frontier_{suite}.png": False, "hybrid_vs_single_{suite}.png": False},
    "03_router_accuracy": {"router_accuracy_{suite}.csv": False, "router_accuracy_{suite}.png": False,
                           "ood_{suite}.csv": False},
    "04_judges": {"judges_{suite}.csv": False, "judges_panels_{suite}.csv": False,
                  "judges_reliability_{suite}.csv": False, "judges_panels_{suite}.png": False,
                  "judges_auc_{suite}.csv": False, "judges_{suite}.png": False},
    "05_budget_explorer": {"budget_explorer_{suite}.png": False},
    "06_live_demo": {"live_demo.csv": False, "collect_summary.csv": False, "collect_frontier.png": False},
    "07_self_optimising": {"self_optimising_{suite}.csv": False, "self_optimising_gain_{suite}.csv": False,
                           "claims_self_optimising_{suite}.csv": False, "self_optimising_{suite}.png": False,
                           "cold_start_{suite}.csv": False, "cold_start_{suite}.png": False},
}


def run_suites(params: dict) -> list[str]:
    return list(params.get("suites") or ([params["suite_name"]] if "suite_name" in params else [""]))


def expected_outputs(runs: list[tuple[str, dict]]) -> dict[str, bool]:
    """Every file the runs must write (name -> exact), {suite} expanded with each run's suites."""
    out: dict[str, bool] = {}
    for stem, params in runs:
        for name, exact in OUTPUTS[stem].items():
            for suite in run_suites(params) if "{suite}" in name else [""]:
                out[name.format(suite=suite)] = exact
    return out


def run_name(stem: str, params: dict) -> str:
    """The executed notebook's file name: one per (notebook, suite) for the per-suite runs (suite_name, or a
    one-suite `suites` list)."""
    if "suite_name" in params:
        return f"{stem}-{params['suite_name']}"
    suites = params.get("suites")
    return f"{stem}-{suites[0]}" if isinstance(suites, list) and len(suites) == 1 else stem


def notebooks(only: list[str] | None = None) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(key in p.stem for key in only)]
    return found


def run_notebook(path: Path, out_dir: Path, build_dir: Path, params: dict | None = None) -> Path:
    import papermill

    from .notebook_engine import NAME as ENGINE

    parameters = {"out_dir": str(out_dir), **(params or {})}
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{run_name(path.stem, params or {})}.ipynb"
    # The kernel inherits our environment: drop a headless MPLBACKEND (e.g. Agg) so that the kernel uses the
    # inline backend and the executed notebook keeps its figures as PNG outputs.
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        papermill.execute_notebook(str(path), str(target), parameters=parameters, cwd=str(NOTEBOOKS),
                                   kernel_name="python3", progress_bar=False, engine_name=ENGINE)
    finally:
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    return target


def default_jobs() -> int:
    """One notebook per core, at most two: every notebook pins itself to one BLAS/torch thread, and the
    notebooks read only the shipped data (none reads another's outputs), so they can run side by side."""
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _timed_run(stem: str, params: dict, out_dir: Path, build_dir: Path, folder: Path = NOTEBOOKS) -> float:
    t0 = time.perf_counter()
    run_notebook(folder / f"{stem}.ipynb", out_dir, build_dir, params)
    return time.perf_counter() - t0


def run_all(runs: list[tuple[str, dict]], out_dir: Path, build_dir: Path, jobs: int = 1,
            folder: Path = NOTEBOOKS) -> None:
    """Execute the runs, `jobs` at a time in separate processes (in order: the long comparison notebook is
    listed early so it starts first); the first failure stops the rest and is raised."""
    if jobs <= 1 or len(runs) <= 1:
        for stem, params in runs:
            print(f"[reproduce] {run_name(stem, params)}: {_timed_run(stem, params, out_dir, build_dir, folder):.1f} s",
                  flush=True)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_timed_run, stem, params, out_dir, build_dir, folder): run_name(stem, params)
                   for stem, params in runs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()
                print(f"[reproduce] {futures[future]}: {future.result():.1f} s", flush=True)


def summary(out_dir: Path) -> str:
    """Headline numbers: the best single model per suite and the claims table."""
    lines = []
    models = out_dir / "models_table.csv"
    if models.exists():
        t = pd.read_csv(models)
        for suite, rows in t[t["benchmark"] == "all"].groupby("suite", sort=False):
            best = rows.loc[rows["accuracy"].idxmax()]
            lines.append(f"{suite}: {len(rows)} models; best single model {best['model']} "
                         f"accuracy {best['accuracy']:.3f} at {best['usd_per_query']:.2e} USD/query")
    c = pd.read_csv(out_dir / "claims.csv") if (out_dir / "claims.csv").exists() else pd.DataFrame()
    if len(c):
        for r in c.itertuples(index=False):
            verdict = f" -> {r.verdict}" if isinstance(r.verdict, str) else ""
            lines.append(f"{r.suite}: {r.claim}: ours {r.ours:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}] "
                         f"(paper {r.paper_value:.3g}){verdict}")
    return "\n".join(lines)


README = ROOT / "README.md"
CLAIMS_START, CLAIMS_END = "<!-- claims:start (written by make reproduce) -->", "<!-- claims:end -->"


def all_claims(out_dir: Path) -> pd.DataFrame:
    """Every claims row, from the claims_*.csv files the notebooks write (02: claims_<suite>.csv and
    claims_<suite>_x4.csv; 07: claims_self_optimising_<suite>.csv): each notebook run writes its own file, so
    runs side by side never share one. Order: the shipped suites in SUITES order, each with its blocks, then any
    other suite's files by name."""
    files = sorted(out_dir.glob("claims_*.csv"))

    def rank(path: Path) -> tuple:
        stem = path.stem[len("claims_"):]
        for i, suite in enumerate(SUITES):
            for j, name in enumerate((suite, f"{suite}_x4", f"self_optimising_{suite}")):
                if stem == name:
                    return (i, j, "")
        return (len(SUITES), 0, stem)

    frames = [pd.read_csv(p) for p in sorted(files, key=rank)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_claims(out_dir: Path) -> Path | None:
    """claims.csv: every claims file joined (what the README's table and the tests read)."""
    table = all_claims(out_dir)
    if table.empty:
        return None
    path = out_dir / "claims.csv"
    table.to_csv(path, index=False, float_format="%.4g")
    return path


def readme_with_claims(readme: str, out_dir: Path) -> str:
    """The README with its claims block replaced by the table rendered from the claims files in out_dir."""
    from .evaluation.claims import claims_markdown

    if CLAIMS_START not in readme or CLAIMS_END not in readme:
        return readme
    head, rest = readme.split(CLAIMS_START, 1)
    _, tail = rest.split(CLAIMS_END, 1)
    table = claims_markdown(pd.read_csv(out_dir / "claims.csv"))
    return f"{head}{CLAIMS_START}\n{table}\n{CLAIMS_END}{tail}"


def _same_table(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-6) -> str | None:
    """None when equal up to floating-point noise, else what differs."""
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return f"shape/columns {a.shape} vs {b.shape}"
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            close = np.isclose(xv, yv, rtol=rtol, atol=1e-12, equal_nan=True)
            if not close.all():
                i = int(np.flatnonzero(~close)[0])
                return f"column {col!r}, row {i}: {xv[i]!r} vs {yv[i]!r}"
        elif not x.astype(str).equals(y.astype(str)):
            i = int(np.flatnonzero((x.astype(str) != y.astype(str)).to_numpy())[0])
            return f"column {col!r}, row {i}: {x.iloc[i]!r} vs {y.iloc[i]!r}"
    return None


def drift(out_dir: Path) -> list[str]:
    """Every regenerated table that differs from its committed version (git HEAD) beyond float noise."""
    problems = []
    for path in sorted(out_dir.glob("*.csv")):
        rel = path.resolve().relative_to(ROOT)
        shown = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True)
        if shown.returncode != 0:
            problems.append(f"{rel}: not committed yet")
            continue
        diff = _same_table(pd.read_csv(path), pd.read_csv(io.BytesIO(shown.stdout)))
        if diff:
            problems.append(f"{rel}: {diff}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "figures")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "notebooks")
    parser.add_argument("--quick", action="store_true", help="small-scale parameters (for tests)")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    parser.add_argument("--check", action="store_true",
                        help="fail when a regenerated table in figures/ differs from the committed one")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="notebooks run at once (default: one per core, at most 2; each uses one core)")
    parser.add_argument("--no-fit-cache", action="store_true",
                        help="fit in every notebook instead of sharing fitted methods through build/cache/fitted")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # The notebooks' kernels inherit this: each (suite, seed, fit split) is fitted once, by whichever notebook
    # needs it first, and loaded by the others (fit_cache.py; keyed by the code and the data, never stale).
    if not args.no_fit_cache:
        os.environ.setdefault(fit_cache.ENV, str(ROOT / "build" / "cache" / "fitted"))
    start = time.perf_counter()
    selected = {p.stem for p in notebooks(args.only)}
    runs = [(stem, params) for stem, params in (QUICK_RUNS if args.quick else RUNS) if stem in selected]
    run_all(runs, args.out_dir.resolve(), args.build_dir.resolve(), args.jobs)
    print(f"[reproduce] all notebooks in {time.perf_counter() - start:.1f} s with {args.jobs} job(s); "
          f"outputs in {args.out_dir}")
    write_claims(args.out_dir)
    print(summary(args.out_dir))
    claims = args.out_dir / "claims.csv"
    if claims.exists() and args.out_dir.resolve() == (ROOT / "figures").resolve():
        README.write_text(readme_with_claims(README.read_text(), args.out_dir))
        print("[reproduce] README claims table updated from figures/claims.csv")
    if args.out_dir.resolve() == (ROOT / "figures").resolve() and (ROOT / ".git").exists():
        problems = drift(args.out_dir)
        for line in problems:
            print(f"[reproduce] drift: {line}")
        print(f"[reproduce] {'no table differs' if not problems else f'{len(problems)} table(s) differ'} "
              "from the committed figures/")
        if problems and args.check:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
