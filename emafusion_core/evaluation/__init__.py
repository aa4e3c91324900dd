"""Evaluation layer: tables, the replay engine, baselines, metrics, budget calibration and the harness."""
from .baselines import (AutoMix, KNNRouter, MLPRouter, Oracle, Policy, RandomRouter, RouteLLMRouter,
                        SingleModel, ThresholdCascade, ZeroRouter)
from .budget import budget_frontier, calibrate_budgets, choose_hyper, select_by_budget
from .context import FitData, SplitView
from .harness import Harness, HarnessResult, default_policies
from .replay import Decision, Outcome, ReplayExecutor, Scorer, queries_of
from .summary import format_details, format_table, paired_comparison, seed_metrics, summarise
from .tables import extra_models_table, models_table

__all__ = ["extra_models_table", "models_table",
           "AutoMix", "Decision", "FitData", "Harness", "HarnessResult", "KNNRouter", "MLPRouter",
           "Oracle", "Outcome", "Policy", "RandomRouter", "ReplayExecutor", "RouteLLMRouter", "Scorer",
           "SingleModel", "SplitView", "ThresholdCascade", "ZeroRouter", "budget_frontier", "calibrate_budgets",
           "choose_hyper", "default_policies", "format_details", "format_table", "paired_comparison", "queries_of",
           "seed_metrics", "select_by_budget", "summarise"]
