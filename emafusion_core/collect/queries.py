"""The queries file of `emafusion collect`: what to ask, and how to score each answer.

One row per query (CSV, or JSON Lines for multi-line code and tests). It splits in two on reading: the
queries table of the suite (what routers and judges may read) and the references table (what only the scorer
reads: the scorer name, the reference answer, the tests). The references go to their own file beside the
suite, which `load_suite` never opens, just as the score lives in outcomes and never reaches a Query.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data.schema import QUERY_COLUMNS
from ..data.training import LABEL_COLUMNS

SCORER_FORMATS = {"exact": "free_text", "normalised": "free_text", "numeric": "number",
                  "choice": "multiple_choice", "code": "code", "judge": "free_text"}
NEEDS_REFERENCE = ("exact", "normalised", "numeric", "choice")
REFERENCE_COLUMNS = ("query_id", "scorer", "reference", "tests")
_QUERY_KEEP = tuple(c.name for c in QUERY_COLUMNS if c.name not in ("answer_format", "contaminated")) + LABEL_COLUMNS
ALLOWED = tuple(dict.fromkeys(("query_id", "prompt", "scorer", "reference", "tests") + _QUERY_KEEP))


class QueriesFileError(ValueError):
    """The queries file is malformed; the message names the file, the line and the column."""


@dataclass(frozen=True)
class QuerySet:
    queries: pd.DataFrame  # the suite's queries table (answer_format from the scorer)
    references: pd.DataFrame  # query_id, scorer, reference, tests: read by the scorer only

    def __len__(self) -> int:
        return len(self.queries)


def read_queries_file(path: str | Path) -> pd.DataFrame:
    """The raw table of a .csv or .jsonl file, every cell a string (empty cells as empty strings)."""
    path = Path(path)
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if not all(isinstance(r, dict) for r in rows):
                raise QueriesFileError(f"{path}: every line must be a JSON object")
            table = pd.DataFrame(rows)
        elif path.suffix == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise QueriesFileError(f"{path}: expected a .csv or .jsonl file")
    except FileNotFoundError:
        raise QueriesFileError(f"{path}: no such file") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, QueriesFileError):
            raise
        raise QueriesFileError(f"{path}: cannot be read ({' '.join(str(exc).split())})") from None
    return table.fillna("").astype(str)


def parse_queries(table: pd.DataFrame, source: str = "queries") -> QuerySet:
    """Validate the raw table; QueriesFileError (one line: file, line, column) on the first problem."""
    line = (lambda i: f"line {i + 2}") if source.endswith(".csv") else (lambda i: f"line {i + 1}")  # noqa: E731
    unknown = [c for c in table.columns if c not in ALLOWED]
    if unknown:
        raise QueriesFileError(f"{source}: unknown column(s) {unknown} (allowed: {', '.join(ALLOWED)})")
    for column in ("query_id", "prompt", "scorer"):
        if column not in table.columns:
            raise QueriesFileError(f"{source}: missing column '{column}' (has: {', '.join(table.columns)})")
    if table.empty:
        raise QueriesFileError(f"{source}: no queries")
    table = table.copy()
    for column in ("reference", "tests"):
        if column not in table.columns:
            table[column] = ""
    for i, row in enumerate(table.itertuples(index=False)):
        where = f"{source}, {line(i)}"
        if not row.query_id.strip():
            raise QueriesFileError(f"{where}, column 'query_id': empty")
        if not row.prompt.strip():
            raise QueriesFileError(f"{where}, column 'prompt': empty prompt (query {row.query_id!r})")
        if row.scorer not in SCORER_FORMATS:
            raise QueriesFileError(f"{where}, column 'scorer': unknown scorer {row.scorer!r} (expected one of "
                                   f"{', '.join(SCORER_FORMATS)})")
        if row.scorer in NEEDS_REFERENCE and not row.reference.strip():
            raise QueriesFileError(f"{where}, column 'reference': scorer {row.scorer!r} needs a reference answer "
                                   f"(query {row.query_id!r})")
        if row.scorer == "code" and not row.tests.strip():
            raise QueriesFileError(f"{where}, column 'tests': scorer 'code' needs tests, Python asserts run "
                                   f"after the answer's code (query {row.query_id!r})")
    dup = table["query_id"].duplicated()
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise QueriesFileError(f"{source}, {line(i)}, column 'query_id': duplicate id {table['query_id'].iloc[i]!r}")
    queries = table[[c for c in _QUERY_KEEP if c in table.columns]].copy()
    if "benchmark" not in queries.columns:
        queries["benchmark"] = ""
    queries["benchmark"] = queries["benchmark"].where(queries["benchmark"].str.strip() != "", table["scorer"])
    queries["answer_format"] = table["scorer"].map(SCORER_FORMATS)
    if "n_shot" in queries.columns:
        bad = ~queries["n_shot"].str.fullmatch(r"\d*")
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise QueriesFileError(f"{source}, {line(i)}, column 'n_shot': not a whole number")
        queries["n_shot"] = pd.to_numeric(queries["n_shot"].replace("", "0")).astype(int)
    for column in LABEL_COLUMNS:  # an empty label is missing, not a category named ""
        if column in queries.columns:
            queries[column] = queries[column].where(queries[column] != "")
    queries["question"] = queries["question"].where(queries["question"] != "", queries["prompt"]) \
        if "question" in queries.columns else queries["prompt"]
    if "category" not in queries.columns:
        queries["category"] = ""
    return QuerySet(queries.reset_index(drop=True), table[list(REFERENCE_COLUMNS)].reset_index(drop=True))


def queries_of_set(query_set: QuerySet) -> list:
    """The Query objects of a query set (what a router or judge may read: no reference)."""
    from types import SimpleNamespace

    from ..data.training import queries_of

    return queries_of(SimpleNamespace(queries=query_set.queries), query_set.queries["query_id"])


def load_queries(path: str | Path) -> QuerySet:
    return parse_queries(read_queries_file(path), str(path))
