"""Judges: protocol, LLM judge, peer-agreement judge, learned verifier, panel and aggregation rules."""
from .base import Judge, Verdict
from .llm_judge import LLMJudge, parse_rating, seed_recorded_verdicts
from .panel import RULES, Calibrator, Panel, PanelVerdict, aggregate, verdict_matrix
from .peer import PeerAgreementJudge
from .table import TableJudge
from .verifier import LearnedVerifier

__all__ = ["Calibrator", "Judge", "LLMJudge", "LearnedVerifier", "Panel", "PanelVerdict", "PeerAgreementJudge",
           "RULES", "TableJudge", "Verdict", "aggregate", "parse_rating", "seed_recorded_verdicts", "verdict_matrix"]
