"""Queries, answers and the executors that produce answers: the one thing that differs between replay and live.

A policy (router, cascade, judge) asks an executor to run models on a batch of queries and gets answers: the
text and what it cost, or a typed failure. It never sees a score. The ReplayExecutor reads recorded outcomes
(minus the score column); the LiteLLMExecutor (llm/) calls a provider through the cached gateway. Both answer
`run_column(batch, rows, model)`, so the cascade runs one code path over either.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, Sequence

import numpy as np
import pandas as pd


class ErrorKind(str, Enum):
    """Why a model run gave no usable answer. Every kind is a paid-for (or refused) failure, never a score."""

    PROVIDER = "provider_error"  # the provider failed after retries (5xx, timeouts, connection)
    BAD_REPLY = "bad_reply"  # a reply came back but is unusable (empty, truncated, filtered, unparseable)
    BUDGET = "budget"  # the USD cap refused the call before it was sent
    REPLAY_MISS = "replay_miss"  # replay mode and nothing recorded for the request
    DEADLINE = "deadline"  # the request's deadline passed before the call finished
    NOT_RECORDED = "not_recorded"  # replay: the source kept a score but no response text (nothing to judge)
    FAILED = "failed"  # replay: the outcome table records the call itself as failed (error_kind column)

    @property
    def no_answer(self) -> bool:
        """A failure proper (scored 0, the fallback applies); a recorded score without recorded text
        (NOT_RECORDED) is an answer the judges cannot read, not a failure."""
        return self is not ErrorKind.NOT_RECORDED

    @classmethod
    def of(cls, value: str) -> "ErrorKind":
        """Map a gateway error label (llm.errors kinds) or a recorded error_kind onto the typed kinds."""
        try:
            return cls(value)
        except ValueError:
            pass
        if value in ("truncated", "empty", "content_filter", "unparseable", "bad_json", "malformed"):
            return cls.BAD_REPLY
        if value == "price_unknown":
            return cls.BUDGET
        return cls.PROVIDER


@dataclass(frozen=True)
class Query:
    """What a policy may know about a request: text and metadata, never a score."""

    query_id: str
    prompt: str
    question: str | None = None  # the request without few-shot exemplars (what routers embed)
    benchmark: str = ""
    category: str = ""
    answer_format: str = "free_text"
    metadata: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.question or self.prompt


@dataclass(frozen=True)
class Answer:
    """One model run. `error_kind` set means the run failed; its cost is still charged."""

    query_id: str
    model: str
    response: str | None
    cost_usd: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0
    cached: bool = False
    error_kind: ErrorKind | None = None
    error: str | None = None  # the readable reason beside the kind

    def __post_init__(self):
        if self.error is not None and self.error_kind is None:
            object.__setattr__(self, "error_kind", ErrorKind.PROVIDER)
        if self.error_kind is not None and self.error is None:
            object.__setattr__(self, "error", ErrorKind(self.error_kind).value)

    @property
    def ok(self) -> bool:
        return self.error_kind is None and self.response is not None


@dataclass(eq=False)
class Batch:
    """Queries answered together (a split in replay, one or a few requests live), with their embeddings.

    `memo` holds per-batch work that a knob sweep would otherwise repeat (judge verdicts, routes); keys hold
    the fitted object itself, so a memo never outlives or confuses the object it was computed for."""

    queries: list[Query]
    embeddings: np.ndarray | None = None
    memo: dict = field(default_factory=dict)

    @property
    def query_ids(self) -> list[str]:
        return [q.query_id for q in self.queries]

    @property
    def texts(self) -> list[str]:
        return [q.text for q in self.queries]

    def __len__(self) -> int:
        return len(self.queries)

    def cached(self, key, compute):
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


@dataclass
class Column:
    """One model's answers on some rows of a batch, as arrays (what the cascade's state stores)."""

    ok: np.ndarray  # (r,) bool
    cost: np.ndarray  # (r,) USD charged
    text: np.ndarray  # (r,) object: response or None
    error: np.ndarray  # (r,) object: ErrorKind or None
    failed: np.ndarray  # (r,) bool: the call failed, no answer at all (not so for NOT_RECORDED: see ErrorKind)
    answers: list[Answer] | None = None  # the full Answer objects (live runs keep them for reports)


class Executor(Protocol):
    def run(self, query: Query, model: str) -> Answer:
        ...


def run_column(executor, batch: Batch, rows: np.ndarray, model: str) -> Column:
    """Run `model` on the given rows of a batch: vectorised where the executor can (replay), else through
    its run_many (live, concurrent) or run (one at a time)."""
    rows = np.asarray(rows, int)
    if hasattr(executor, "run_rows"):
        return executor.run_rows(batch, rows, model)
    jobs = [(batch.queries[i], model) for i in rows]
    answers = executor.run_many(jobs) if hasattr(executor, "run_many") else [executor.run(q, m) for q, m in jobs]
    return Column(ok=np.array([a.ok for a in answers], bool), cost=np.array([a.cost_usd for a in answers], float),
                  text=np.array([a.response for a in answers] + [None], object)[:-1],
                  error=np.array([a.error_kind for a in answers] + [None], object)[:-1],
                  failed=np.array([a.error_kind is not None and ErrorKind(a.error_kind).no_answer for a in answers],
                                  bool), answers=answers)


_ANSWER_COLUMNS = ("query_id", "model", "response", "cost_usd", "input_tokens", "output_tokens", "error_kind")


class ReplayExecutor:
    """Executor over recorded outcomes: the recorded response and cost of (query, model), never the score.

    Built from the outcome table minus its score column (the suite itself is not kept). A recorded failure
    (error_kind set) or a missing response comes back as a failed Answer that was paid for."""

    def __init__(self, outcomes: pd.DataFrame, model_names: Sequence[str]):
        table = outcomes[[c for c in _ANSWER_COLUMNS if c in outcomes.columns]]
        self.model_names = list(model_names)
        col = {m: j for j, m in enumerate(self.model_names)}
        ids = pd.Index(pd.unique(table["query_id"].astype(str)))
        self._row = pd.Series(np.arange(len(ids)), index=ids)
        n, m = len(ids), len(self.model_names)
        r = self._row.loc[table["query_id"].astype(str)].to_numpy()
        c = table["model"].map(col).to_numpy()
        known = ~pd.isna(c)
        r, c = r[known], c[known].astype(int)
        self._has = np.zeros((n, m), bool)
        self._has[r, c] = True
        self._cost = np.zeros((n, m))
        self._cost[r, c] = table["cost_usd"].to_numpy(float)[known]
        self._text = np.full((n, m), None, object)
        if "response" in table.columns:
            resp = table["response"].to_numpy(object)[known]
            self._text[r, c] = np.where(pd.isna(resp), None, resp)
        self._error = np.full((n, m), None, object)
        self._error[self._text == None] = ErrorKind.NOT_RECORDED  # noqa: E711 - elementwise
        if "error_kind" in table.columns:
            kinds = table["error_kind"].to_numpy(object)[known]
            failed = ~pd.isna(kinds)
            self._error[r[failed], c[failed]] = ErrorKind.FAILED
            self._text[r[failed], c[failed]] = None
        self._failed = np.vectorize(lambda e: e is not None and e.no_answer, otypes=[bool])(self._error)
        self._tokens = {}
        for name in ("input_tokens", "output_tokens"):
            if name in table.columns:
                mat = np.full((n, m), np.nan)
                mat[r, c] = pd.to_numeric(table[name], errors="coerce").to_numpy(float)[known]
                self._tokens[name] = mat
        self.calls = 0

    @classmethod
    def for_suite(cls, suite) -> "ReplayExecutor":
        """Over a Suite's outcome table (its score column is not passed on)."""
        return cls(suite.outcomes.drop(columns=["score"]), suite.model_names)

    def rows_of(self, batch: Batch) -> np.ndarray:
        """Recorded-table rows of a batch's queries (computed once per batch)."""
        def compute():
            missing = [q for q in batch.query_ids if q not in self._row.index]
            if missing:
                raise KeyError(f"no recorded outcome for query {missing[0]!r}")
            return self._row.loc[batch.query_ids].to_numpy()
        return batch.cached((self, "rows"), compute)

    def _col(self, model: str) -> int:
        try:
            return self.model_names.index(model)
        except ValueError:
            raise KeyError(f"no recorded outcome for model {model!r}") from None

    def recorded_arrays(self, query_ids: Sequence[str], model_names: Sequence[str]) -> list[np.ndarray]:
        """What is recorded for these queries and models (presence, cost, text, error kind): what a fit on
        them can read, for a cache key (fit_cache.py)."""
        r = self._row.loc[list(query_ids)].to_numpy()
        c = [self._col(m) for m in model_names]
        error = np.vectorize(lambda e: None if e is None else e.value, otypes=[object])(self._error[np.ix_(r, c)])
        return [self._has[np.ix_(r, c)], self._cost[np.ix_(r, c)], self._text[np.ix_(r, c)], error,
                *(v[np.ix_(r, c)] for _, v in sorted(self._tokens.items()))]

    def run_rows(self, batch: Batch, rows: np.ndarray, model: str) -> Column:
        j = self._col(model)
        # the model's column over the whole batch, taken once per batch: a calibrate sweep asks for the same
        # model on rows of one batch thousands of times
        has, ok, cost, text, error, failed = batch.cached((self, "column", j), lambda: self._batch_column(batch, j))
        rows = np.asarray(rows, int)
        if not has[rows].all():
            raise KeyError(f"no recorded outcome for model {model!r} on some queries")
        self.calls += len(rows)
        return Column(ok=ok[rows], cost=cost[rows], text=text[rows], error=error[rows], failed=failed[rows])

    def _batch_column(self, batch: Batch, j: int) -> tuple[np.ndarray, ...]:
        r = self.rows_of(batch)
        error = self._error[r, j]
        return self._has[r, j], error == None, self._cost[r, j], self._text[r, j], error, self._failed[r, j]  # noqa: E711

    def run(self, query: Query, model: str) -> Answer:
        j = self._col(model)
        if query.query_id not in self._row.index or not self._has[self._row[query.query_id], j]:
            raise KeyError(f"no recorded outcome for model {model!r} on query {query.query_id!r}")
        i = self._row[query.query_id]
        self.calls += 1
        tokens = {k: (None if np.isnan(v[i, j]) else int(v[i, j])) for k, v in self._tokens.items()}
        return Answer(query_id=query.query_id, model=model, response=self._text[i, j], cost_usd=float(self._cost[i, j]),
                      cached=True, error_kind=self._error[i, j], **tokens)

    def run_many(self, jobs: Sequence[tuple[Query, str]]) -> list[Answer]:
        return [self.run(q, m) for q, m in jobs]


def stable_rng(*parts) -> np.random.Generator:
    """A generator that depends only on its parts: anything random replays identically on every machine."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
