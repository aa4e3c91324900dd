"""`emafusion collect`: every pool model on every query through the gateway, scored, as a suite.

Calls go through the pool's executor (the same messages, parameters and cache keys `ask` and `serve` use)
as one gateway batch, so everything is cached as it arrives: an interrupted run (Ctrl-C, a provider
outage, a budget stop) resumes from the cache, and a rerun pays for nothing it already paid for (charged
bad replies included: the client reuses them). A call that gave no answer is a failed-call row (error_kind
set, empty score), never a score of 0.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import Config
from ..data import Suite
from ..data.io import save_suite
from ..execution import Answer, ErrorKind
from ..llm import LLMClient, LLMError
from ..system import PoolExecutor
from .queries import QuerySet, queries_of_set
from .scoring import Scorer

# failures a rerun may cure (nothing was cached): the provider, the budget, a deadline
TRANSIENT = (ErrorKind.PROVIDER, ErrorKind.BUDGET, ErrorKind.DEADLINE, ErrorKind.REPLAY_MISS)


@dataclass
class Collected:
    suite: Suite
    references: pd.DataFrame  # the scorer's inputs: never part of the suite tables
    scoring: pd.DataFrame  # per (query, model): scorer, detail, judge_cost_usd
    failures: list[Answer] = field(default_factory=list)
    unscored: int = 0  # answers the judge could not score (recorded as failed rows)
    spent_usd: float = 0.0  # paid by this run (cache hits and reused failures cost nothing)
    calls: int = 0  # provider attempts of this run
    cached: int = 0  # outcomes served from the cache
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """No failure that a rerun could cure."""
        return not any(a.error_kind in TRANSIENT for a in self.failures)

    def report(self) -> list[str]:
        o, s = self.suite.outcomes, self.suite
        n = len(o)
        judge_usd = float(self.scoring["judge_cost_usd"].sum())
        lines = [f"collected {s.name}: {len(s.queries)} queries x {len(s.models)} models = {n} outcomes in "
                 f"{self.seconds:.1f} s ({n / max(self.seconds, 1e-9):.2f}/s): {self.cached} from the cache, "
                 f"{self.calls} provider calls, ${self.spent_usd:.6f} paid by this run",
                 f"recorded cost: models ${o['cost_usd'].sum():.6f}, judge ${judge_usd:.6f} (kept apart, in "
                 f"scoring.csv)"]
        for model in s.model_names:
            rows = o[o["model"] == model]
            lines.append(f"  {model}: mean score {rows['score'].mean():.3f} over {rows['score'].notna().sum()} "
                         f"scored, ${rows['cost_usd'].mean():.2e}/query, {rows['error_kind'].notna().sum()} failed")
        if self.failures:
            kinds = Counter(ErrorKind(a.error_kind).value for a in self.failures)
            lines.append(f"failed calls: {len(self.failures)} (" + ", ".join(f"{k} {v}" for k, v in
                                                                            sorted(kinds.items())) + ")")
            for a in self.failures[:5]:
                lines.append(f"  {a.query_id} / {a.model}: {' '.join(str(a.error).split())[:160]}")
        if self.unscored:
            lines.append(f"unscored: {self.unscored} answers the judge could not rate (recorded as failed rows)")
        if not self.complete:
            lines.append("incomplete: rerun the same command to retry the failed calls (answers already paid for "
                         "come from the cache at no cost)")
        return lines


def _problem(answer: Answer) -> str:
    """The failure's short label (e.g. `truncated`, `connection`): the same on a rerun that reuses it."""
    return str(answer.error).split(":", 1)[0]


def _models_table(config: Config, client: LLMClient) -> pd.DataFrame:
    rows = []
    for m in config.models:
        try:
            p_in, p_out = client.pricer.rates(m.name)
            p_in, p_out = p_in * 1e6, p_out * 1e6
        except LLMError:
            p_in = p_out = None
        rows.append(dict(model=m.name, family=m.family or m.name, litellm_model=m.litellm_model,
                         input_usd_per_mtok=p_in, output_usd_per_mtok=p_out))
    return pd.DataFrame(rows)


def collect(config: Config, query_set: QuerySet, client: LLMClient, scorer: Scorer, name: str) -> Collected:
    """Run, score and tabulate (nothing written: see write_collected). The pool is the config's models."""
    scorer.check(list(query_set.references["scorer"]))  # refuse before paying for anything
    started, spent, calls, hits = time.perf_counter(), client.budget.spent_usd, client.stats.calls, client.stats.hits
    queries = queries_of_set(query_set)
    models = [m.name for m in config.models]
    jobs = [(q, m) for q in queries for m in models]
    answers = PoolExecutor(client, config).run_many(jobs, desc="collect")
    cached = client.stats.hits - hits
    refs = query_set.references.set_index("query_id")
    answered = [a for a in answers if a.ok]
    items = [(refs.at[a.query_id, "scorer"], q.prompt, a.response, refs.at[a.query_id, "reference"],
              refs.at[a.query_id, "tests"]) for (q, _), a in zip(jobs, answers) if a.ok]
    scores = dict(zip(((a.query_id, a.model) for a in answered), scorer.score_many(items, client)))
    rows, details, unscored = [], [], 0
    for a in answers:
        s = scores.get((a.query_id, a.model))
        kind = None if a.ok else ErrorKind(a.error_kind).value
        if s is not None and s.score is None:  # answered, but the judge gave no score: not a 0
            kind, unscored = ErrorKind.FAILED.value, unscored + 1
        rows.append(dict(query_id=a.query_id, model=a.model, score=None if kind else s.score, cost_usd=a.cost_usd,
                         error_kind=kind, cost_source="recorded", response=a.response if a.ok else None,
                         input_tokens=a.input_tokens, output_tokens=a.output_tokens))
        details.append(dict(query_id=a.query_id, model=a.model, scorer=refs.at[a.query_id, "scorer"],
                            detail=s.detail if s is not None else f"call failed: {_problem(a)}",
                            judge_cost_usd=s.judge_cost_usd if s is not None else 0.0))
    outcomes = pd.DataFrame(rows).astype({"score": float, "input_tokens": "Int64", "output_tokens": "Int64",
                                          "error_kind": object, "response": object})
    suite = Suite.from_tables(name, query_set.queries, outcomes, _models_table(config, client))
    failures = [a for a in answers if not a.ok]
    return Collected(suite, query_set.references, pd.DataFrame(details), failures, unscored,
                     client.budget.spent_usd - spent, client.stats.calls - calls, cached,
                     time.perf_counter() - started)


def check_out(out: str | Path) -> None:
    """Refuse (one line) to write over a folder holding a suite that collect did not write (a shipped one)."""
    from ..data.io import find_table

    out = Path(out)
    if out.is_dir() and find_table(out, "queries") is not None and not (out / "references.parquet").exists():
        raise ValueError(f"--out: {out} holds a suite that `emafusion collect` did not write: refusing to overwrite it")


def write_collected(collected: Collected, out: str | Path) -> Path:
    """The suite tables (save_suite), and beside them what routers never read: references.parquet and
    scoring.csv (load_suite opens neither)."""
    out = Path(out)
    check_out(out)
    save_suite(collected.suite, out)
    collected.references.to_parquet(out / "references.parquet", index=False)
    collected.scoring.to_csv(out / "scoring.csv", index=False)
    return out
