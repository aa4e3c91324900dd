"""A live EMAFusion built from a Config: routers fitted on recorded outcomes, models called through the gateway.

The routers (taxonomy, learned, hybrid) are the same objects the replay harness evaluates, fitted the same way
(fit split of the configured suite, seed from the config) on the suite models that the pool's models stand for.
Answers come from a LiteLLMExecutor per pool model; judges are LLM judges on pool models; every call is charged
and cached on disk.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import diskcache
import pandas as pd

from .cascade import Cascade, CascadeResult
from .config import Config, ConfigError
from .data import Suite, load_builtin
from .decompose import Decomposer, join_answers
from .execution import Answer, Query
from .hybrid import HybridRouter
from .judges import LLMJudge, Panel
from .llm import LiteLLMExecutor, LLMClient, Pricer
from .routing import Route


class PoolExecutor:
    """Runs a pool model with its own sampling parameters (one LiteLLMExecutor per model, one client)."""

    def __init__(self, client: LLMClient, config: Config):
        self.executors = {m.name: LiteLLMExecutor(client, params={"temperature": m.temperature,
                                                                  "max_tokens": m.max_tokens})
                          for m in config.models}

    def run(self, query: Query, model: str) -> Answer:
        if model not in self.executors:
            raise KeyError(f"model {model!r} is not in the pool ({', '.join(self.executors)})")
        return self.executors[model].run(query, model)


def make_client(config: Config, cache=None) -> LLMClient:
    """The gateway for a config: pool names are the gateway's model ids; endpoints carry litellm ids, bases and
    keys read from the environment variables the config names (never from the file)."""
    endpoints, prices = {}, {}
    for m in config.models:
        settings = {"model": m.litellm_model}
        if m.api_base:
            settings["api_base"] = m.api_base
            settings.setdefault("api_key", "none")
        if m.api_key_env:
            if m.api_key_env not in os.environ:
                raise ConfigError(f"models[{m.name}].api_key_env: environment variable {m.api_key_env} is not set")
            settings["api_key"] = os.environ[m.api_key_env]
        endpoints[m.name] = settings
        if m.price_in is not None and m.price_out is not None:
            prices[m.name] = (m.price_in, m.price_out)
    cache = diskcache.Cache(config.cache_dir) if cache is None else cache
    return LLMClient(cache, mode=config.mode, pricer=Pricer(prices), budget=config.budget_usd, endpoints=endpoints,
                     progress=False)


def _pool_suite(suite: Suite, config: Config) -> tuple[Suite, dict[str, str]]:
    """The suite restricted to the models the pool stands for, renamed to pool names."""
    to_pool = {}
    for m in config.models:
        if m.stands_for not in set(suite.models["model"]):
            raise ConfigError(f"models[{m.name}].stands_for: {m.stands_for!r} is not a model of suite "
                              f"{suite.name!r} ({', '.join(suite.model_names)})")
        if m.stands_for in to_pool:
            raise ConfigError(f"models[{m.name}].stands_for: {m.stands_for!r} already stands for {to_pool[m.stands_for]!r}")
        to_pool[m.stands_for] = m.name
    outcomes = suite.outcomes[suite.outcomes["model"].isin(to_pool)].assign(model=lambda d: d["model"].map(to_pool))
    models = suite.models[suite.models["model"].isin(to_pool)].assign(model=lambda d: d["model"].map(to_pool))
    families = {m.name: m.family or m.name for m in config.models}
    models = models.assign(family=models["model"].map(families))
    return Suite.from_tables(suite.name, suite.queries, outcomes.reset_index(drop=True),
                             models.reset_index(drop=True)), families


@dataclass
class AskResult:
    answer: str
    parts: list[tuple[str, Route, CascadeResult]]
    decomposition_cost_usd: float

    @property
    def cost_usd(self) -> float:
        return self.decomposition_cost_usd + sum(r.cost_usd for _, _, r in self.parts)


class EMAFusionSystem:
    def __init__(self, config: Config, router, client: LLMClient):
        self.config, self.router, self.client = config, router, client
        self.executor = PoolExecutor(client, config)
        judges = [LLMJudge(client, name, max_tokens=200) for name in config.cascade.judges]
        self.panel = Panel(judges, rule=config.cascade.rule) if judges else None
        self.decomposer = Decomposer(client, config.decompose_with) if config.decompose_with else None

    @classmethod
    def build(cls, config: Config, client: LLMClient | None = None, encoder=None) -> "EMAFusionSystem":
        """Fit the configured router on the suite's fit split (seconds, from the shipped embeddings)."""
        from .evaluation import FitData, Harness
        from .evaluation.emafusion import fit_parts
        from .features import default_encoder

        suite, families = _pool_suite(load_builtin(config.fit_suite), config)
        encoder = encoder or default_encoder()
        harness = Harness(suite, encoder, seeds=[config.fit_seed], policies=lambda s, sc: [])
        fit = harness.views(config.fit_seed)["fit"]
        data = FitData(fit, harness.scorer.scores(fit.query_ids), harness.scorer.costs(fit.query_ids))
        parts = fit_parts(data, families, encoder=encoder)
        spec = config.router
        taxonomy, learned = parts.taxonomy, parts.learned
        taxonomy.tau_c, taxonomy.tau_fam, taxonomy.max_candidates = spec.tau_c, spec.tau_fam, spec.k
        learned.cost_weight, learned.k = spec.cost_weight, spec.k
        router = {"taxonomy": taxonomy, "learned": learned, "hybrid": HybridRouter(taxonomy, learned)}[spec.kind]
        return cls(config, router, client or make_client(config))

    def route(self, text: str) -> Route:
        return self.router.route_batch([Query("request", text)])[0]

    def _answer_part(self, i: int, text: str) -> tuple[str, Route, CascadeResult]:
        query = Query(f"request-{i}", text)
        route = self.router.route_batch([query])[0]
        if not self.config.cascade.enabled or self.panel is None:
            route = replace(route, candidates=(route.single,))
            result = Cascade(self.executor, Panel([_Never()]), tau_j=1.0).run(query, route)
        else:
            result = Cascade(self.executor, self.panel, tau_j=self.config.cascade.tau_j).run(query, route)
        return text, route, result

    def ask(self, text: str) -> AskResult:
        """Answer a request live: decompose (if configured), route each part, run the judged cascade."""
        parts, cost = (text,), 0.0
        if self.decomposer is not None:
            d = self.decomposer.split(text)
            parts, cost = d.parts, d.cost_usd
        answered = [self._answer_part(i, p) for i, p in enumerate(parts)]
        answers = [r.answer.response or f"[no answer: {r.answer.error}]" for _, _, r in answered]
        return AskResult(join_answers(tuple(parts), answers), answered, cost)


class _Never:
    """A judge for the no-cascade path, where a single candidate answers and nothing is judged."""

    name = "none"

    def judge(self, query, answer, paid):  # pragma: no cover - a single candidate is never judged
        raise AssertionError("a single-candidate route is never judged")


def describe(result: AskResult) -> pd.DataFrame:
    """One row per subproblem: path, candidates, models run, verdicts and the cost split."""
    rows = []
    for text, route, r in result.parts:
        verdicts = "; ".join(f"{m}: " + ", ".join(f"{v.judge}={'abstain' if v.confidence is None else f'{v.confidence:.2f}'}"
                                                   for v in pv.verdicts)
                             for m, pv in r.steps if pv is not None)
        rows.append(dict(request=text[:60], path=route.path, candidates=" > ".join(route.candidates),
                         models_run=" > ".join(r.models_run), answered_by=r.answer.model, verdicts=verdicts,
                         model_usd=r.model_cost_usd, judge_usd=r.judge_cost_usd, router_usd=r.router_cost_usd))
    return pd.DataFrame(rows)
