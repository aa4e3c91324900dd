"""Checks that a suite's tables follow the schema, with errors a user can act on.

Every error names the file (or table), the column and the first offending row, so a malformed
bring-your-own-data file is fixed in one look instead of failing deep inside a router.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import ANSWER_FORMATS, COST_SOURCES, ERROR_KINDS, TABLES


def _is_csv(source: str) -> bool:
    return str(source).endswith((".csv", ".csv.gz"))


class DataValidationError(ValueError):
    """A table breaks the schema. Carries where: source, column and row (0-based data row, as pandas counts).

    The message says where to look in the file: for a CSV file the line number an editor shows (the header is
    line 1, so data row 0 is line 2); for parquet and in-memory tables the 0-based row."""

    def __init__(self, source: str, column: str | None, row: int | None, problem: str, value=None):
        self.source, self.column, self.row, self.problem = source, column, row, problem
        where = f"{source}"
        if column is not None:
            where += f", column '{column}'"
        if row is not None:
            where += f", line {self.line}" if self.line is not None else f", row {row}"
        shown = "" if value is None else f" (value: {str(value)[:80]!r})"
        super().__init__(f"{where}: {problem}{shown}")

    @property
    def line(self) -> int | None:
        """The offending row's line in a CSV file (header = line 1); None for parquet or in-memory tables."""
        return self.row + 2 if self.row is not None and _is_csv(self.source) else None


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
BOOL_WORDS = "true/false, 1/0 or yes/no"


def _bool(value) -> bool | None:
    """A strictly parsed boolean cell: None if missing; ValueError for anything but BOOL_WORDS (any case)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(value)
    if _is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def as_bool(values: pd.Series, default: bool = False) -> pd.Series:
    """A validated boolean column as Python bools (missing: default). `astype(bool)` would read "no" as True."""
    return values.map(lambda v: default if _bool(v) is None else _bool(v)).astype(bool)


def _is_scalar(value) -> bool:
    return not isinstance(value, (list, tuple, dict, set, np.ndarray))


def _first_bad(mask: pd.Series) -> int | None:
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(positions[0]) if len(positions) else None


def _check_columns(df: pd.DataFrame, table: str, source: str) -> None:
    for col in TABLES[table]:
        if col.required and col.name not in df.columns:
            raise DataValidationError(source, col.name, None,
                                      f"missing required column (has: {', '.join(map(str, df.columns))})")
        if col.name not in df.columns:
            continue
        values = df[col.name]
        row = _first_bad(~values.map(_is_scalar))
        if row is not None:  # a parquet list column: one line here, not a TypeError deep in pandas
            raise DataValidationError(source, col.name, row, f"expected a single {col.kind} value, not a list",
                                      values.iloc[row])
        if col.required or col.kind != "str":
            # a failed call's row leaves its score empty (validate_outcomes checks that rule)
            may_be_empty = df["error_kind"].notna() if col.name == "score" and "error_kind" in df.columns else False
            row = _first_bad(values.isna() & ~may_be_empty) if col.required else None
            if row is not None:
                raise DataValidationError(source, col.name, row, "missing value")
        if col.kind in ("float", "int"):
            numeric = pd.to_numeric(values, errors="coerce")
            row = _first_bad(numeric.isna() & values.notna())
            if row is not None:
                raise DataValidationError(source, col.name, row, "not a number", values.iloc[row])
            if col.kind == "int":
                integral = numeric.isna() | (numeric == numeric.round())
                row = _first_bad(~integral)
                if row is not None:
                    raise DataValidationError(source, col.name, row, "not an integer", values.iloc[row])
        if col.kind == "bool":
            row = _first_bad(values.map(_not_bool))
            if row is not None:
                raise DataValidationError(source, col.name, row, f"not a boolean (write {BOOL_WORDS})",
                                          values.iloc[row])


def _not_bool(value) -> bool:
    try:
        _bool(value)
        return False
    except ValueError:
        return True


def _check_unique(df: pd.DataFrame, keys: list[str], source: str) -> None:
    row = _first_bad(df.duplicated(keys, keep="first"))
    if row is not None:
        value = "/".join(str(df[k].iloc[row]) for k in keys)
        raise DataValidationError(source, "+".join(keys), row, "duplicate id", value)


def _check_range(df: pd.DataFrame, column: str, source: str, low=None, high=None,
                 allow_missing: bool = False) -> None:
    values = pd.to_numeric(df[column], errors="coerce")
    bad = pd.Series(False, index=df.index)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    bad |= ~np.isfinite(values.fillna(0.0))
    if allow_missing:
        bad &= df[column].notna()
    row = _first_bad(bad)
    if row is not None:
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise DataValidationError(source, column, row, f"outside {rng}", df[column].iloc[row])


def _check_allowed(df: pd.DataFrame, column: str, allowed, source: str, what: str) -> None:
    if column not in df.columns:
        return
    values = df[column]
    row = _first_bad(values.notna() & ~values.isin(list(allowed)))
    if row is not None:
        raise DataValidationError(source, column, row, f"unknown {what}; expected one of {sorted(allowed)[:12]}",
                                  values.iloc[row])


def validate_queries(queries: pd.DataFrame, source: str = "queries") -> None:
    _check_columns(queries, "queries", source)
    if len(queries) == 0:
        raise DataValidationError(source, None, None, "no queries: a suite needs at least one row")
    _check_unique(queries, ["query_id"], source)
    row = _first_bad(queries["prompt"].astype("string").str.strip().fillna("") == "")
    if row is not None:
        raise DataValidationError(source, "prompt", row, "empty prompt", queries["query_id"].iloc[row])
    _check_allowed(queries, "answer_format", ANSWER_FORMATS, source, "answer format")


def validate_models(models: pd.DataFrame, source: str = "models") -> None:
    _check_columns(models, "models", source)
    if len(models) == 0:
        raise DataValidationError(source, None, None, "no models: a suite needs at least one row")
    _check_unique(models, ["model"], source)
    for col in ("input_usd_per_mtok", "output_usd_per_mtok"):
        if col in models.columns and models[col].notna().any():
            _check_range(models, col, source, low=0.0, allow_missing=True)


def validate_outcomes(outcomes: pd.DataFrame, queries: pd.DataFrame, models: pd.DataFrame,
                      source: str = "outcomes", queries_source: str = "queries") -> None:
    _check_columns(outcomes, "outcomes", source)
    _check_unique(outcomes, ["query_id", "model"], source)
    _check_range(outcomes, "score", source, 0.0, 1.0)
    _check_allowed(outcomes, "error_kind", ERROR_KINDS, source, "error kind")
    failed = outcomes["error_kind"].notna() if "error_kind" in outcomes.columns else pd.Series(False, outcomes.index)
    row = _first_bad(pd.to_numeric(outcomes["score"], errors="coerce").isna() & ~failed)
    if row is not None:
        raise DataValidationError(source, "score", row, "empty score on a call that did not fail (set error_kind "
                                  "for a failed call)", outcomes["score"].iloc[row])
    row = _first_bad(pd.to_numeric(outcomes["score"], errors="coerce").notna() & failed)
    if row is not None:
        raise DataValidationError(source, "score", row, "a failed call (error_kind set) must leave score empty",
                                  outcomes["score"].iloc[row])
    _check_range(outcomes, "cost_usd", source, low=0.0)
    _check_allowed(outcomes, "model", set(models["model"]), source, "model name (not in the models table)")
    _check_allowed(outcomes, "query_id", set(queries["query_id"]), source, "query id (not in the queries table)")
    _check_allowed(outcomes, "cost_source", COST_SOURCES, source, "cost source")
    # Every query needs a score from every model: routers and the oracle compare models per query.
    n_models = models["model"].nunique()
    counts = outcomes.groupby("query_id", sort=False)["model"].nunique()
    incomplete = counts[counts < n_models]
    missing_queries = set(queries["query_id"]) - set(counts.index)
    if len(incomplete) or missing_queries:
        qid = incomplete.index[0] if len(incomplete) else sorted(missing_queries)[0]
        have = set(outcomes.loc[outcomes["query_id"] == qid, "model"])
        lacking = sorted(set(models["model"]) - have)
        row = _first_bad(outcomes["query_id"] == qid)
        if row is None:  # no outcome at all: the line to look at is the query's, in the queries file
            raise DataValidationError(queries_source, "query_id", _first_bad(queries["query_id"] == qid),
                                      f"query {qid!r} has no row in {source} (it needs one per model: "
                                      f"{lacking[:5]})")
        # the outcomes file's own row: the query's first outcome row there
        raise DataValidationError(source, "model", row,
                                  f"query {qid!r} has no outcome for model(s) {lacking[:5]}")


def validate_judgments(judgments: pd.DataFrame, queries: pd.DataFrame, models: pd.DataFrame,
                       source: str = "judgments") -> None:
    _check_columns(judgments, "judgments", source)
    _check_unique(judgments, ["query_id", "model", "judge", "turn"], source)
    _check_allowed(judgments, "query_id", set(queries["query_id"]), source, "query id")
    _check_allowed(judgments, "model", set(models["model"]), source, "model name")
