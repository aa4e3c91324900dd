"""Baseline policies of evaluation.md, all driven by the same harness on the same splits."""
from .base import Policy
from .cascades import AutoMix, ThresholdCascade
from .routers import KNNRouter, MLPRouter, RouteLLMRouter
from .simple import Oracle, RandomRouter, SingleModel, ZeroRouter

__all__ = ["AutoMix", "KNNRouter", "MLPRouter", "Oracle", "Policy", "RandomRouter", "RouteLLMRouter", "SingleModel",
           "ThresholdCascade", "ZeroRouter"]
