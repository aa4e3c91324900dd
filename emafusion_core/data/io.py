"""Reading and writing suites on disk (parquet, CSV or gzipped CSV), with errors that name the file."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .suite import Suite
from .validation import BOOL_WORDS, DataValidationError, as_bool

_SUFFIXES = (".parquet", ".csv", ".csv.gz")
_OPTIONAL_TABLES = ("judgments",)


def default_data_dir() -> Path:
    """The project's data/ folder, or $EMAFUSION_DATA when set (for installs outside the repo)."""
    env = os.environ.get("EMAFUSION_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    try:
        if path.name.endswith(".parquet"):
            return pd.read_parquet(path)
        if path.name.endswith((".csv", ".csv.gz")):
            # Empty strings stay empty strings; only truly blank numeric cells become NaN.
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear message
        raise DataValidationError(str(path), None, None, f"cannot be read as a table: {exc}") from exc
    raise DataValidationError(str(path), None, None, f"unsupported file type (use one of {_SUFFIXES})")


def find_table(directory: Path, table: str) -> Path | None:
    hits = [directory / f"{table}{suffix}" for suffix in _SUFFIXES if (directory / f"{table}{suffix}").exists()]
    if len(hits) > 1:
        raise DataValidationError(str(directory), None, None,
                                  f"more than one file for table '{table}': {[h.name for h in hits]}")
    return hits[0] if hits else None


def load_suite(directory: str | Path, name: str | None = None) -> Suite:
    """Load and validate a suite folder holding queries, outcomes and models (+ optional judgments)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataValidationError(str(directory), None, None, "no such suite folder")
    tables, sources = {}, {}
    for table in ("queries", "outcomes", "models", *_OPTIONAL_TABLES):
        path = find_table(directory, table)
        if path is None:
            if table in _OPTIONAL_TABLES:
                continue
            raise DataValidationError(str(directory), None, None,
                                      f"missing table '{table}' (expected {table}.parquet, .csv or .csv.gz)")
        tables[table], sources[table] = read_table(path), str(path)
    return Suite.from_tables(name or directory.name, tables["queries"], tables["outcomes"], tables["models"],
                             tables.get("judgments"), sources)


def load_builtin(name: str, data_dir: str | Path | None = None) -> Suite:
    """One of the shipped suites (BUILTIN_SUITES: 'routerbench', 'routellm', 'zeroeval', 'mmlupro') or any
    suite folder under data/."""
    base = Path(data_dir) if data_dir else default_data_dir()
    directory = base / name
    if not directory.is_dir():
        known = sorted(p.name for p in base.iterdir() if p.is_dir() and find_table(p, "queries")) if base.is_dir() else []
        raise DataValidationError(str(directory), None, None, f"unknown suite '{name}'; found: {known}")
    return load_suite(directory, name)


def gpt4_class_model(name: str, data_dir: str | Path | None = None) -> str | None:
    """The model a suite's models table marks `gpt4_class` (the paper's "GPT-4" of that suite), read from
    the models table alone; None when the suite has no such column or no marked model."""
    base = Path(data_dir) if data_dir else default_data_dir()
    path = find_table(base / name, "models") if (base / name).is_dir() else None
    if path is None:
        return None
    models = read_table(path)
    if "gpt4_class" not in models.columns:
        return None
    try:
        marked = models.loc[as_bool(models["gpt4_class"]).to_numpy(), "model"]
    except ValueError as exc:
        raise DataValidationError(str(path), "gpt4_class", None, f"not a boolean (write {BOOL_WORDS})", str(exc))

    return str(marked.iloc[0]) if len(marked) == 1 else None


def save_suite(suite: Suite, directory: str | Path) -> None:
    """Write a suite as compressed parquet (queries, outcomes, judgments) and a readable models.csv."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    queries = suite.queries.drop(columns=["suite"])
    # A question equal to its prompt is stored as missing (the loader fills it back): halves the file.
    queries["question"] = queries["question"].where(queries["question"] != queries["prompt"])
    queries.to_parquet(directory / "queries.parquet", index=False, compression="zstd")
    suite.outcomes.to_parquet(directory / "outcomes.parquet", index=False, compression="zstd")
    suite.models.to_csv(directory / "models.csv", index=False)
    if suite.judgments is not None:
        suite.judgments.to_parquet(directory / "judgments.parquet", index=False, compression="zstd")
