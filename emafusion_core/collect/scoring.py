"""Scoring a response against a query's reference: the labels of a collected suite.

A scorer reads the response text and the query's reference row (scorer, reference, tests), never the name
of the model that answered: the same reply gets the same score whoever wrote it. Answers are read with the
project's one answer extraction (judges/extract.py), so scoring and the peer judges agree on what a reply
says. The LLM judge grades through the gateway with the judge's template and parser (judges/llm_judge.py);
its cost is reported apart from the models' cost.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Sequence

from ..execution import Query
from ..judges.extract import extract_code, score_answer
from ..judges.llm_judge import LLMJudge, parse_rating
from ..llm import LLMClient, LLMError
from .sandbox import Sandbox


@dataclass(frozen=True)
class Score:
    score: float | None  # in [0, 1]; None when it could not be given (a judge that failed or gave no rating)
    detail: str = ""  # why: the extracted answer, the test outcome, the judge's rating
    judge_cost_usd: float = 0.0


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_PUNCT)).split())


class Scorer:
    """Scores (prompt, response, reference row) triples, grouped so that judge calls go out as one batch.

    sandbox: runs code answers (its check() is called before the first one, so a machine that cannot isolate
    code refuses once, clearly). judge: an LLMJudge over the gateway for the `judge` scorer (None: that scorer
    is refused)."""

    def __init__(self, sandbox: Sandbox | None = None, judge: LLMJudge | None = None):
        self.sandbox, self.judge = sandbox or Sandbox(), judge

    def check(self, scorers: Sequence[str]) -> None:
        """Refuse before any model is called if some query's scorer cannot run here (one-line errors)."""
        if "code" in scorers:
            self.sandbox.check()
        if "judge" in scorers and self.judge is None:
            raise ValueError("scorer 'judge' needs a judge model: pass --judge <pool model>")

    def score_one(self, scorer: str, response: str, reference: str, tests: str) -> Score:
        """Every scorer but the judge (which needs the gateway: see score_many)."""
        if scorer == "exact":
            return Score(float(response.strip() == reference.strip()))
        if scorer == "normalised":
            return Score(float(normalise(response) == normalise(reference)))
        if scorer == "numeric":
            return Score(score_answer("number", response, reference))
        if scorer == "choice":
            return Score(score_answer("multiple_choice", response, reference))
        if scorer == "code":
            code = extract_code(response)
            if code is None:
                return Score(0.0, "no code block in the reply")
            result = self.sandbox.run(code, tests)
            return Score(float(result.passed), result.detail)
        raise ValueError(f"unknown scorer {scorer!r}")

    def score_many(self, items: Sequence[tuple[str, str, str, str, str]], client: LLMClient | None = None
                   ) -> list[Score]:
        """items: (scorer, prompt, response, reference, tests); judge items go to the gateway as one batch."""
        out: list[Score | None] = [None] * len(items)
        judged = []
        for i, (scorer, prompt, response, reference, tests) in enumerate(items):
            if scorer == "judge":
                judged.append(i)
            else:
                out[i] = self.score_one(scorer, response, reference, tests)
        if judged:
            requests = [self.judge.request(Query(f"score-{i}", items[i][1]), items[i][2]) for i in judged]
            replies = (client or self.judge.client).batch(requests, desc="judge")
            for i, reply in zip(judged, replies):
                if isinstance(reply, LLMError):
                    out[i] = Score(None, f"judge failed: {reply.kind}", reply.cost_usd)
                    continue
                rating = parse_rating(reply.text)
                out[i] = Score(None if rating is None else rating / 10.0,
                               "judge gave no rating" if rating is None else f"rating {rating:g}", reply.cost_usd)
        return out  # type: ignore[return-value]
