"""Peer-agreement judge: another model answers the same query; agreement with it is the confidence.

Answers already paid for earlier in the cascade are reused at no cost; otherwise the peer model is run
through the executor (replay or live) and its cost is charged, and its answer is handed back so the
cascade can use it without paying twice.
"""
from __future__ import annotations

from typing import Mapping

from ..execution import Answer, Executor, Query
from .base import Verdict
from .extract import agreement


class PeerAgreementJudge:
    def __init__(self, executor: Executor, peer_model: str):
        self.executor, self.peer_model = executor, peer_model
        self.name = f"peer:{peer_model}"

    def judge(self, query: Query, answer: Answer, paid: Mapping[str, Answer]) -> Verdict:
        if answer.model == self.peer_model:
            return Verdict(self.name, None, detail="candidate is the peer itself")
        peer = paid.get(self.peer_model)
        bought: tuple[Answer, ...] = ()
        cost = 0.0
        if peer is None:
            peer = self.executor.run(query, self.peer_model)
            bought, cost = (peer,), peer.cost_usd
        if not peer.ok or not answer.ok:
            return Verdict(self.name, None, cost, len(bought), bought, "no answer to compare")
        conf = agreement(query.answer_format, answer.response, peer.response)
        return Verdict(self.name, conf, cost, len(bought), bought,
                       "agree" if conf == 1.0 else "disagree" if conf == 0.0 else "")
