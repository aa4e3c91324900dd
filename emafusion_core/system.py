"""A live EMAFusion built from a Config: the fitted method at an operating point, models called through the gateway.

The method is the same object the replay harness evaluates (method.EMAFusion), fitted the same way (fit split
of the configured suite, seed from the config) on the suite models that the pool's models stand for. The
operating point is either the one `make reproduce` calibrated for a budget (`operating_point: <file>#<budget>`)
or knobs typed into the config. Answers come from a LiteLLMExecutor per pool model; judges are the fitted
verifier, peer agreement with pool models and LLM judges; every call is charged and cached on disk.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import diskcache
import numpy as np
import pandas as pd

from .config import Config, ConfigError
from .data import DataValidationError, Suite, load_builtin, make_splits, split_ids, training_set
from .decompose import Decomposer, join_answers
from .execution import Answer, Batch, ErrorKind, Query
from .judges import LLMJudge, Verdict
from .ledgers import open_ledger
from .llm import Budget, LiteLLMExecutor, LLMClient, Pricer
from .llm.executor import plain_messages
from .llm.ledger import Ledger
from .method import EMAFusion, OperatingPoint
from .routing import Route


class PoolExecutor:
    """Runs a pool model as the config defines it: its own sampling parameters and system prompt (one
    LiteLLMExecutor per model over one client)."""

    def __init__(self, client: LLMClient, config: Config):
        self.client = client
        self.executors = {m.name: LiteLLMExecutor(client, params={"temperature": m.temperature,
                                                                  "max_tokens": m.max_tokens},
                                                  **_templates(m.system_prompt))
                          for m in config.models}

    def _executor(self, model: str) -> LiteLLMExecutor:
        if model not in self.executors:
            raise KeyError(f"model {model!r} is not in the pool ({', '.join(self.executors)})")
        return self.executors[model]

    def run(self, query: Query, model: str) -> Answer:
        return self._executor(model).run(query, model)

    def run_many(self, jobs: Sequence[tuple[Query, str]], *, desc: str = "pool") -> list[Answer]:
        """Concurrent runs as one gateway batch (each model keeps its parameters and its concurrency limit, the
        models run side by side); answers in input order."""
        requests = [self._executor(m).request(q, m) for q, m in jobs]
        outcomes = self.client.batch(requests, desc=desc)
        return [LiteLLMExecutor._answer(q, m, o) for (q, m), o in zip(jobs, outcomes)]


def _templates(system_prompt: str | None) -> dict:
    """LiteLLMExecutor's message builder for a pool model: the plain user turn, after the model's system prompt
    when it has one (another template version, so cache keys of pools without one are unchanged)."""
    if not system_prompt:
        return {}
    return {"messages": lambda query: [{"role": "system", "content": system_prompt}, *plain_messages(query)],
            "template_version": "system-v1"}


def make_client(config: Config, cache=None, ledger: Ledger | None = None, **options) -> LLMClient:
    """The gateway for a config: pool names are the gateway's model ids; endpoints carry litellm ids, bases and
    keys read from the environment variables the config names (never from the file). Its budget is the
    config's budget_usd over the config's ledger (default: on disk beside the cache), so every process of
    one config shares one cap and a restart keeps what was spent. options: further LLMClient settings
    (progress, concurrency, retry, ...)."""
    endpoints, prices = {}, {}
    for i, m in enumerate(config.models):
        settings = {"model": m.litellm_model}
        if m.api_base:
            settings["api_base"] = m.api_base
            settings.setdefault("api_key", "none")
        if m.api_key_env:
            if m.api_key_env not in os.environ:
                raise ConfigError(f"models[{i}].api_key_env: environment variable {m.api_key_env} is not set")
            settings["api_key"] = os.environ[m.api_key_env]
        endpoints[m.name] = settings
        if m.price_in is not None and m.price_out is not None:
            prices[m.name] = (m.price_in, m.price_out)
    cache = diskcache.Cache(config.cache_dir) if cache is None else cache
    ledger = open_ledger(config) if ledger is None else ledger
    budget = Budget(config.budget_usd, scope="run", ledger=ledger)
    options = {"progress": False, **options}
    return LLMClient(cache, mode=config.mode, pricer=Pricer(prices), budget=budget, endpoints=endpoints,
                     timeout_s=config.timeout_s, **options)


def pool_suite(suite: Suite, config: Config) -> Suite:
    """The suite restricted to the models the pool stands for, renamed to pool names. A model without
    `stands_for` uses the suite's model of its own name (a suite collected for this pool)."""
    to_pool = {}
    known = set(suite.models["model"])
    for i, m in enumerate(config.models):
        if m.suite_model not in known:
            if m.stands_for is None:
                raise ConfigError(f"models[{i}].stands_for: required: {m.name!r} is not a model of suite "
                                  f"{suite.name!r} ({', '.join(suite.model_names)}); name the one it stands for, "
                                  f"or fit on a suite collected for this pool (`emafusion collect`)")
            raise ConfigError(f"models[{i}].stands_for: {m.stands_for!r} is not a model of suite "
                              f"{suite.name!r} ({', '.join(suite.model_names)})")
        if m.suite_model in to_pool:
            raise ConfigError(f"models[{i}].stands_for: {m.suite_model!r} already stands for "
                              f"{to_pool[m.suite_model]!r}")
        to_pool[m.suite_model] = m.name
    outcomes = suite.outcomes[suite.outcomes["model"].isin(to_pool)].assign(model=lambda d: d["model"].map(to_pool))
    models = suite.models[suite.models["model"].isin(to_pool)].assign(model=lambda d: d["model"].map(to_pool))
    families = {m.name: m.family or m.name for m in config.models}
    models = models.assign(family=models["model"].map(families))
    return Suite.from_tables(suite.name, suite.queries, outcomes.reset_index(drop=True),
                             models.reset_index(drop=True))


def fit_method(config: Config, encoder) -> EMAFusion:
    """Fit the method on the pool's part of the suite's fit split (seconds, from the shipped embeddings)."""
    try:
        fit_suite = load_builtin(config.fit_suite)
    except DataValidationError as exc:
        raise ConfigError(f"fit.suite: {config.fit_suite!r} cannot be loaded ({exc})") from None
    suite = pool_suite(fit_suite, config)
    ids = list(split_ids(make_splits(suite.queries, suite.name, config.fit_seed), "fit"))
    train = training_set(suite, ids, seed=config.fit_seed)
    train.view.embeddings = np.asarray(encoder.encode(train.view.texts))
    # a suite without taxonomy labels (a collected one, unless its queries file brings label columns) fits the
    # learned parts only, which the learned router needs; the taxonomy and hybrid routers cannot run without them
    method = EMAFusion(k=config.router.k, encoder=encoder, require_taxonomy=False).fit(train)
    if method.taxonomy_unavailable_ and config.router.kind != "learned":
        raise ConfigError(f"router.kind: {config.router.kind!r} needs taxonomy labels, and suite {suite.name!r} has "
                          f"none ({method.taxonomy_unavailable_}): use router.kind: learned")
    return method


def load_fitted(config: Config, encoder) -> EMAFusion:
    """The method saved by `emafusion fit`, refused when it was fitted for another fit section or pool."""
    from .persist import load_method, read_manifest

    saved = read_manifest(config.fitted).get("fit")
    if saved != config.fit_signature():
        raise ConfigError(f"fitted: {config.fitted} was fitted for {saved}, but this config's fit section and "
                          f"pool are {config.fit_signature()}: run `emafusion fit` again")
    return load_method(config.fitted, encoder)


# ---- operating points travel between make reproduce and the config -------------------------------------------
def write_operating_points(path: str | Path, suite: str, policy: str, seed: int,
                           points: Sequence[tuple[float, OperatingPoint]]) -> Path:
    """Write the operating points calibrated per budget (suite model names in judge names)."""
    path = Path(path)
    doc = {"suite": suite, "policy": policy, "fit_seed": seed,
           "points": [{"budget_usd": b, **p.to_dict()} for b, p in points]}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_operating_point(ref: str, base_dir: Path | None = None) -> tuple[dict, OperatingPoint]:
    """`<file>#<budget>`: the point calibrated for the largest budget <= the given one (budget in USD/query)."""
    if "#" not in ref:
        raise ConfigError(f"operating_point: expected <file>#<budget in USD>, got {ref!r}")
    file, budget_text = ref.rsplit("#", 1)
    path = Path(file) if base_dir is None or Path(file).is_absolute() else base_dir / file
    try:
        budget = float(budget_text)
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"operating_point: {ref!r}: {exc}") from None
    except OSError:
        raise ConfigError(f"operating_point: {path}: no such file") from None
    points = sorted(doc["points"], key=lambda p: p["budget_usd"])
    fitting = [p for p in points if p["budget_usd"] <= budget * (1 + 1e-9)]
    if not fitting:
        raise ConfigError(f"operating_point: {ref!r}: the smallest calibrated budget is {points[0]['budget_usd']:.3g} USD")
    return doc, OperatingPoint.from_dict(fitting[-1])


@dataclass
class CascadeResult:
    """One request (or subproblem) through the cascade, as `ask` and `serve` report it."""

    query_id: str
    answer: Answer
    models_run: list[str]
    steps: list[tuple[str, list[Verdict]]] = field(default_factory=list)  # (model, verdicts on its answer)
    accepted_by_panel: bool = False
    fallback: bool = False  # the last candidate failed: this is the best answer already paid for
    escalation_error: str | None = None  # with a fallback: why the last candidate gave no answer
    answers: dict = field(default_factory=dict)  # model -> Answer, every answer this part paid for
    model_cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    router_cost_usd: float = 0.0
    path: str = ""

    @property
    def cost_usd(self) -> float:
        return self.model_cost_usd + self.judge_cost_usd + self.router_cost_usd


@dataclass
class AskResult:
    answer: str
    parts: list[tuple[str, Route, CascadeResult]]
    decomposition_cost_usd: float
    observed: object = None  # with a self-optimising loop: what it took from this request (online.Observations)

    @property
    def cost_usd(self) -> float:
        return self.decomposition_cost_usd + sum(r.cost_usd for _, _, r in self.parts)

    @property
    def ok(self) -> bool:
        return all(r.answer.ok for _, _, r in self.parts)


class EMAFusionSystem:
    def __init__(self, config: Config, method: EMAFusion, point: OperatingPoint, client: LLMClient,
                 embed_lock: threading.Lock | None = None):
        """embed_lock: serialises embedding (the encoder and its on-disk store), shared by with_client copies
        so concurrent requests embed one at a time and run their model calls in parallel."""
        self.config, self.method, self.point, self.client = config, method, point, client
        self.embed_lock = embed_lock or threading.Lock()
        self.executor = PoolExecutor(client, config)
        self.decomposer = Decomposer(client, config.decompose_with) if config.decompose_with else None
        # LLM judges call through this system's client (its budget): handed to the method per call
        self.judges = {j.name: j for j in (LLMJudge(client, name, max_tokens=200) for name in config.cascade.llm_judges)}

    def with_client(self, client: LLMClient) -> "EMAFusionSystem":
        """The same fitted system over another client (e.g. one request's budget view)."""
        return EMAFusionSystem(self.config, self.method, self.point, client, self.embed_lock)

    @classmethod
    def build(cls, config: Config, client: LLMClient | None = None, encoder=None,
              config_dir: Path | None = None) -> "EMAFusionSystem":
        """Load the fitted method the config names (`fitted:`), else fit it (a few seconds)."""
        from .features import default_encoder

        client = client or make_client(config)  # first: a missing key is told before seconds of fitting
        encoder = encoder or default_encoder()
        method = load_fitted(config, encoder) if config.fitted else fit_method(config, encoder)
        return cls(config, method, operating_point(config, config_dir), client)

    def _routed(self, texts: Sequence[str], loop=None) -> tuple[Batch, list[Route]]:
        """Embed under the embed lock, then route. With a self-optimising loop the lock also guards the learned
        state it changes: the request loads the newest version (loop.sync()) and routes under the lock, so it
        routes with one version; the cascade then reads the routes memoised on the batch. Without a loop,
        routing runs outside the lock, as it always did."""
        batch = Batch([Query(f"request-{i}", t) for i, t in enumerate(texts)])
        with self.embed_lock:
            batch.embeddings = self.method.embed(batch)
            if loop is not None:
                loop.sync()
                return batch, self.method.explain(batch, self.point)
        return batch, self.method.explain(batch, self.point)

    def route(self, text: str) -> Route:
        return self._routed([text])[1][0]

    def self_optimising_loop(self):
        """The config's self-optimising loop over this system (online_store.SharedLoop): its learned state lives
        in the Store of the budget ledger (one per config), so `serve --workers N` and restarts share it. Raises
        ConfigError when the method cannot learn, LearnedStateError when the stored state is unusable."""
        from .online_store import LoopSettings, SharedLoop, state_key

        spec = self.config.self_optimising
        if getattr(self.method, "taxonomy_router_", None) is None:
            raise ConfigError("self_optimising.enabled: the loop updates the taxonomy router's suitability table, "
                              "and this method was fitted without taxonomy labels")
        ledger = self.client.budget.ledger
        key = state_key(ledger.name, self.config.fit_signature())
        return SharedLoop(self.method, self.point, ledger.store, key, self.config.fit_signature(),
                          LoopSettings(spec.batch_size, spec.weight, spec.cap, spec.explore_share, spec.seed),
                          lock=self.embed_lock)

    def ask(self, text: str, loop=None) -> AskResult:
        """Answer a request live: decompose (if configured), then route and run the judged cascade on every part
        as one batch (concurrent calls). loop: a self-optimising loop (online_store.SharedLoop): the request
        routes with its newest learned state, and after the cascade it takes the verdicts (and explores),
        before the result is read, so what exploration paid is in the result's judge cost."""
        parts, cost = (text,), 0.0
        if self.decomposer is not None:
            d = self.decomposer.split(text)
            parts, cost = d.parts, d.cost_usd
        batch, routes = self._routed(parts, loop)
        decision, state = self.method.decide(batch, self.executor, self.point, record=True, judges=self.judges)
        observed = None if loop is None else loop.assess(batch, decision, state, judges=self.judges)
        results = [self._result(state, decision, i, routes[i]) for i in range(len(parts))]
        answers = [r.answer.response if r.answer.ok else f"[no answer: {r.answer.error}]" for r in results]
        return AskResult(join_answers(tuple(parts), answers), list(zip(parts, routes, results)), cost, observed)

    def _result(self, state, decision, i: int, route: Route) -> CascadeResult:
        names = state.model_names
        run = [names[j] for j in np.flatnonzero(state.ran[i])]
        order = [m for m in route.candidates if m in run] if self.point.cascade else run
        final = int(decision.final[i])
        verdicts: dict[int, list[Verdict]] = {}
        for row, j, judge, conf, detail in state.verdicts:
            if row == i:
                verdicts.setdefault(j, []).append(Verdict(judge, conf, detail))
        steps = [(m, verdicts.get(names.index(m), [])) for m in order]
        accepted = self.point.cascade and not decision.fallback[i] and names[final] != route.candidates[-1]
        model_usd = float((state.cost[i] * state.ran[i]).sum())
        answers = {names[j]: state.answer(i, j) for j in np.flatnonzero(state.paid[i])}
        fallback = bool(decision.fallback[i])
        escalation = answers[order[-1]].error if fallback and order else None
        return CascadeResult(batch_id(state, i), state.answer(i, final), order, steps, bool(accepted), fallback,
                             escalation, answers, model_usd, float(state.judge_cost[i]), 0.0, route.path)


def batch_id(state, i: int) -> str:
    return state.batch.queries[i].query_id


def operating_point(config: Config, config_dir: Path | None = None) -> OperatingPoint:
    """The config's operating point: the calibrated one it names, mapped to pool names, else its own knobs."""
    to_pool = {m.suite_model: m.name for m in config.models}
    if config.operating_point:
        doc, point = read_operating_point(config.operating_point, config_dir)
        if doc.get("suite") != config.fit_suite:
            raise ConfigError(f"operating_point: calibrated on suite {doc.get('suite')!r}, but fit.suite is "
                              f"{config.fit_suite!r}")
        panel = []
        for name in point.panel:
            if name.startswith("peer:"):
                model = name[len("peer:"):]
                if model not in to_pool:
                    raise ConfigError(f"operating_point: its judge {name!r} stands for no pool model (add a model "
                                      f"with stands_for: {model})")
                name = f"peer:{to_pool[model]}"
            panel.append(name)
        panel += [f"llm:{m}" for m in config.cascade.llm_judges]
        return replace(point, panel=tuple(panel), k=config.router.k)
    r, c = config.router, config.cascade
    panel = tuple(c.judges)
    return OperatingPoint(r.kind, r.tau_c, r.tau_fam, r.cost_weight, r.k, c.enabled and bool(panel), panel, c.rule,
                          (("*", c.tau_j),))


def describe(result: AskResult) -> pd.DataFrame:
    """One row per subproblem: path, candidates, models run, verdicts and the cost split."""
    rows = []
    for text, route, r in result.parts:
        verdicts = "; ".join(f"{m}: " + ", ".join(f"{v.judge}={'abstain' if v.confidence is None else f'{v.confidence:.2f}'}"
                                                   for v in vs)
                             for m, vs in r.steps if vs)
        rows.append(dict(request=text[:60], path=route.path, candidates=" > ".join(route.candidates),
                         models_run=" > ".join(r.models_run), answered_by=r.answer.model, verdicts=verdicts,
                         fallback=r.fallback, model_usd=r.model_cost_usd, judge_usd=r.judge_cost_usd,
                         router_usd=r.router_cost_usd))
    return pd.DataFrame(rows)


__all__ = ["AskResult", "CascadeResult", "EMAFusionSystem", "ErrorKind", "PoolExecutor", "describe", "make_client",
           "operating_point", "pool_suite", "read_operating_point", "write_operating_points"]
