"""The cascade: run a route's candidates cheapest first; the panel accepts an answer or escalates.

The last candidate answers unconditionally (paper default). A candidate whose run fails is not judged:
the cascade escalates. Answers the judges bought (a peer's answer) are reused when the cascade reaches
that model, at no second charge. Every result keeps the models run, every verdict, and the cost split
into model, judge and router parts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .execution import Answer, Executor, Query
from .judges import Panel, PanelVerdict
from .routing import Route


@dataclass
class CascadeResult:
    query_id: str
    answer: Answer
    models_run: list[str]
    steps: list[tuple[str, PanelVerdict | None]] = field(default_factory=list)  # (model, panel verdict)
    accepted_by_panel: bool = False
    model_cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    router_cost_usd: float = 0.0
    path: str = ""

    @property
    def cost_usd(self) -> float:
        return self.model_cost_usd + self.judge_cost_usd + self.router_cost_usd

    @property
    def judge_calls(self) -> int:
        return sum(v.calls for _, v in self.steps if v is not None)


def threshold_for(tau_j: float | Mapping[str, float], task_type: str | None) -> float:
    """tau_j may be one number or a mapping task type -> threshold with a '*' default."""
    if isinstance(tau_j, Mapping):
        if task_type in tau_j:
            return float(tau_j[task_type])
        if "*" not in tau_j:
            raise ValueError(f"tau_j has no entry for task type {task_type!r} and no '*' default")
        return float(tau_j["*"])
    return float(tau_j)


class Cascade:
    def __init__(self, executor: Executor, panel: Panel, tau_j: float | Mapping[str, float] = 0.7,
                 max_candidates: int | None = None):
        if max_candidates is not None and max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        threshold_for(tau_j, None)  # a mapping without a default fails here, not mid-run
        self.executor, self.panel, self.tau_j, self.max_candidates = executor, panel, tau_j, max_candidates

    def run(self, query: Query, route: Route) -> CascadeResult:
        candidates = list(route.candidates)
        if self.max_candidates and len(candidates) > self.max_candidates:
            # keep the router's last resort (its dearest / most suitable candidate) as the last step
            candidates = candidates[: self.max_candidates - 1] + candidates[-1:]
        if not candidates:
            raise ValueError(f"route for {query.query_id} has no candidates")
        task_type = (route.info.get("labels") or {}).get("task_type")
        tau = threshold_for(self.tau_j, task_type)
        paid: dict[str, Answer] = {}
        result = CascadeResult(query.query_id, None, [], router_cost_usd=route.router_cost_usd,  # type: ignore[arg-type]
                               path=route.path)
        for i, model in enumerate(candidates):
            answer = paid.get(model)
            if answer is None:
                answer = self.executor.run(query, model)
                result.model_cost_usd += answer.cost_usd
                paid[model] = answer
            result.models_run.append(model)
            result.answer = answer
            last = i == len(candidates) - 1
            if last:
                result.steps.append((model, None))
                break
            if not answer.ok:
                result.steps.append((model, None))
                continue
            verdict = self.panel.assess(query, answer, paid)
            result.judge_cost_usd += verdict.cost_usd
            for bought in (a for v in verdict.verdicts for a in v.new_answers):
                paid.setdefault(bought.model, bought)
            result.steps.append((model, verdict))
            if verdict.confidence is not None and verdict.confidence >= tau:
                result.accepted_by_panel = True
                break
        return result
