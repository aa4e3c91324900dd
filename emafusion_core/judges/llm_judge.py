"""LLM judge: a model grades the candidate answer from 1 to 10 through the gateway.

Confidence = rating / 10 (the scale of the MT-Bench scores). A reply with no readable rating is an
abstention, logged and marked bad in the cache, never a crash; its cost is still charged. In replay mode
the judge runs from the cache; `seed_recorded_verdicts` puts MT-Bench's recorded GPT-4 verdicts there, so
they are replayed through this same judge and parser.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from ..data.prices import count_tokens
from ..execution import Answer, Query
from ..llm import LLMClient, LLMError, Request, cache_key

log = logging.getLogger(__name__)
TEMPLATE_VERSION = "grade-1-10-v1"
_RATINGS = (re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]"), re.compile(r"rating\s*[:=]?\s*(\d+(?:\.\d+)?)", re.I),
            re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*10\b"))
MAX_CHARS = 6000


def parse_rating(text: str | None) -> float | None:
    """Mean of the 1-10 ratings in a reply ('[[7]]', 'Rating: 7', '7/10'); None if there is none in range."""
    if not text:
        return None
    for pattern in _RATINGS:
        values = [float(v) for v in pattern.findall(text)]
        values = [v for v in values if 1.0 <= v <= 10.0]
        if values:
            return float(np.mean(values))
    return None


def judge_messages(query: Query, answer_text: str) -> list[dict]:
    instructions = (
        "Please act as an impartial judge and rate the quality of the assistant's answer to the user's request. "
        "Judge correctness first, then helpfulness. Be brief: give a one-paragraph explanation, then your rating "
        "on a scale of 1 to 10 in exactly this format: [[rating]], for example [[6]].")
    user = (f"{instructions}\n\n[User request]\n{query.prompt[-MAX_CHARS:]}\n\n"
            f"[Assistant's answer]\n{answer_text[:MAX_CHARS]}\n[End of answer]")
    return [{"role": "system", "content": "You are a careful, impartial grader."}, {"role": "user", "content": user}]


class LLMJudge:
    def __init__(self, client: LLMClient, model: str, max_tokens: int = 300, name: str | None = None):
        self.client, self.model = client, model
        self.params = {"temperature": 0.0, "max_tokens": max_tokens}
        self.name = name or f"llm:{model}"

    def request(self, query: Query, answer_text: str) -> Request:
        return Request(self.model, judge_messages(query, answer_text), dict(self.params),
                       template_version=TEMPLATE_VERSION)

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        """Rate each readable answer through the gateway (concurrently); an error or a reply without a rating
        is an abstention, still charged, and a rating-less reply is marked bad in the cache."""
        rows, models = np.asarray(rows, int), np.asarray(models, int)
        out = np.full(len(rows), np.nan)
        todo = [n for n, (i, j) in enumerate(zip(rows, models)) if state.readable[i, j]]
        requests = [self.request(state.batch.queries[rows[n]], state.text[rows[n], models[n]]) for n in todo]
        replies = self.client.batch(requests, desc=self.name) if requests else []
        for n, reply in zip(todo, replies):
            i, j = rows[n], models[n]
            qid, model = state.batch.queries[i].query_id, state.model_names[j]
            if isinstance(reply, LLMError):
                log.warning("%s abstains on %s/%s: %s", self.name, qid, model, reply.kind)
                state.charge_judge(np.array([i]), reply.cost_usd, 1)
                state.details[(int(i), int(j), self.name)] = reply.kind
                continue
            state.charge_judge(np.array([i]), reply.cost_usd, 1)
            rating = parse_rating(reply.text)
            if rating is None:
                log.warning("%s abstains on %s/%s: no rating in %.80r", self.name, qid, model, reply.text)
                self.client.mark_bad(reply.key, "no rating")
                state.details[(int(i), int(j), self.name)] = "unparseable"
                continue
            out[n] = rating / 10.0
            state.details[(int(i), int(j), self.name)] = f"rating {rating:g}"
        return out


def seed_recorded_verdicts(judge: LLMJudge, store, queries: pd.DataFrame, outcomes: pd.DataFrame,
                           judgments: pd.DataFrame, price_in: float, price_out: float) -> int:
    """Store recorded judge replies (e.g. MT-Bench's GPT-4 verdicts) under this judge's cache keys.

    For each (query, model) with recorded verdicts, the key is the request this judge would send for that
    model's recorded answer; the stored reply is the recorded verdict text of every turn. The cost is what
    the recorded judge calls cost (their prompts and replies in cl100k tokens x the given USD/Mtok prices).
    `store` is the judge client's ResponseCache. Returns the number of entries written.
    """
    from ..llm import Reply

    prompts = queries.set_index("query_id")
    responses = outcomes.set_index(["query_id", "model"])["response"]
    written = 0
    for (qid, model), rows in judgments.sort_values("turn").groupby(["query_id", "model"], sort=True):
        q = prompts.loc[qid]
        query = Query(qid, q["prompt"], q["question"], q["benchmark"], q["category"], q["answer_format"])
        request = judge.request(query, str(responses.loc[(qid, model)]))
        key = cache_key(request)
        n_in = sum(count_tokens(t) for t in rows["judge_prompt"])
        n_out = sum(count_tokens(t) for t in rows["judgment"])
        text = "\n\n".join(rows["judgment"])
        reply = Reply(key=key, model=judge.model, text=text, input_tokens=n_in, output_tokens=n_out,
                      cost_usd=(n_in * price_in + n_out * price_out) / 1e6, latency_s=0.0,
                      reply_id=f"recorded:{qid}:{model}", finish_reason="stop")
        store.put_success(key, reply.record())
        written += 1
    return written
