"""Collecting a user's own suite: every pool model on every query through the gateway, scored (`emafusion collect`)."""
from .queries import QueriesFileError, QuerySet, load_queries, parse_queries
from .run import Collected, collect, write_collected
from .sandbox import Sandbox, SandboxUnavailable
from .scoring import Score, Scorer, normalise

__all__ = ["Collected", "QueriesFileError", "QuerySet", "Sandbox", "SandboxUnavailable", "Score", "Scorer",
           "collect", "load_queries", "normalise", "parse_queries", "write_collected"]
