"""Judges: protocol, LLM judge, peer-agreement judge, learned verifier, panel and aggregation rules."""
from .base import ChargedAsAnswer, Judge, Verdict, judge_answer
from .llm_judge import LLMJudge, parse_rating, seed_recorded_verdicts
from .panel import RULES, Calibrator, Panel, aggregate
from .peer import PeerAgreementJudge
from .verifier import LearnedVerifier

__all__ = ["ChargedAsAnswer", "Calibrator", "Judge", "LLMJudge", "LearnedVerifier", "Panel", "PeerAgreementJudge", "RULES", "Verdict",
           "aggregate", "judge_answer", "parse_rating", "seed_recorded_verdicts"]
