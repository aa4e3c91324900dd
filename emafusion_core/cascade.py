"""The cascade: run each query's candidates cheapest first; a panel of judges accepts an answer or escalates.

One implementation for replay and live, batched: a step runs the current candidate of every still-open
query through the executor (replay: array gathers; live: concurrent gateway calls), the judges read the
answers-so-far state and return a confidence per query, and the queries whose aggregated confidence reaches
their threshold stop. The last candidate answers unconditionally (paper default). A candidate whose answer
cannot be read (failed call, or no recorded text) is escalated unjudged. Answers a judge bought (a peer's)
are reused free when the cascade reaches that model. EMAFusion, the FrugalGPT-style threshold cascade and
AutoMix are configurations of this one loop (candidates, judges, thresholds).

Fallback (shared by `ask`, `serve` and replay): when the last candidate's call fails, the answer returned is
the best one already paid for (highest panel confidence, else the latest run), flagged as a fallback; with
none, the failed answer is returned and its error kind says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .execution import Answer, Batch, run_column
from .judges.panel import Panel
from .results import Decision

@dataclass(eq=False)
class State:
    """What the system knows about a batch so far: which models ran (for the answer or for a judge), their
    answers, what was paid, and the routers' ex-ante predictions. Judges read it; nothing here is a score."""

    batch: Batch
    model_names: list[str]
    executor: object
    predicted: np.ndarray | None = None  # (n, m) routers' predicted correctness, when a router made one
    embeddings: np.ndarray | None = None  # (n, d) query embeddings when the batch brings none (live)
    labels: list[dict] | None = None  # per query: taxonomy labels, when the taxonomy classifier ran
    record: bool = False  # keep Answer objects and every verdict (live reports); replay sweeps skip it
    paid: np.ndarray = field(init=False)  # (n, m) answer bought (by the cascade or a judge)
    ran: np.ndarray = field(init=False)  # (n, m) run as a cascade step: charged as model cost
    readable: np.ndarray = field(init=False)  # (n, m) the answer text exists (a judge can read it)
    failed: np.ndarray = field(init=False)  # (n, m) the call failed: no answer at all
    cost: np.ndarray = field(init=False)  # (n, m) USD each bought answer cost
    text: np.ndarray = field(init=False)  # (n, m) object: answer texts
    error: np.ndarray = field(init=False)  # (n, m) object: ErrorKind or None
    judge_cost: np.ndarray = field(init=False)
    judge_calls: np.ndarray = field(init=False)
    answers: dict = field(default_factory=dict)  # (i, j) -> Answer, when recording
    verdicts: list = field(default_factory=list)  # (i, j, judge name, confidence, detail), when recording
    details: dict = field(default_factory=dict)  # (i, j, judge name) -> a judge's note on its verdict

    def __post_init__(self):
        n, m = len(self.batch), len(self.model_names)
        self.paid, self.ran = np.zeros((n, m), bool), np.zeros((n, m), bool)
        self.readable, self.failed = np.zeros((n, m), bool), np.zeros((n, m), bool)
        self.cost = np.zeros((n, m))
        self.text, self.error = np.full((n, m), None, object), np.full((n, m), None, object)
        self.judge_cost, self.judge_calls = np.zeros(n), np.zeros(n)

    def __len__(self) -> int:
        return len(self.batch)

    def model_index(self, name: str) -> int:
        return self.model_names.index(name)

    def buy(self, rows: np.ndarray, j: int, for_judge: bool = False) -> np.ndarray:
        """Make sure model j has answered on `rows`, paying for the rows not yet bought. A purchase for a judge is
        charged to the judges (cost and one call each); returns the rows that were newly bought."""
        rows = np.asarray(rows, int)
        new = rows[~self.paid[rows, j]]
        if len(new):
            col = run_column(self.executor, self.batch, new, self.model_names[j])
            self.paid[new, j] = True
            self.cost[new, j] = col.cost
            self.text[new, j] = col.text
            self.error[new, j] = col.error
            self.readable[new, j] = col.ok
            self.failed[new, j] = col.failed
            if for_judge:  # rows are distinct, so fancy-index += adds once per row
                self.judge_cost[new] += col.cost
                self.judge_calls[new] += 1
            if self.record and col.answers is not None:
                for i, a in zip(new, col.answers):
                    self.answers[(int(i), j)] = a
        return new

    def charge_judge(self, rows: np.ndarray, usd, calls=1) -> None:
        """Charge judge calls to distinct rows (one judge verdict per row and call)."""
        self.judge_cost[rows] += usd
        self.judge_calls[rows] += calls

    def note(self, rows, models, judge: str, confidences) -> None:
        """Keep each verdict (query row, model, judge, confidence or None, detail) when recording; a judge may
        have left a detail (why it abstained, the rating it read) in `details`."""
        if self.record:
            for i, j, c in zip(rows, models, confidences):
                detail = self.details.get((int(i), int(j), judge), "")
                self.verdicts.append((int(i), int(j), judge, None if np.isnan(c) else float(c), detail))

    def answer(self, i: int, j: int) -> Answer:
        """The Answer object of (query i, model j) as bought (recorded runs keep the gateway's; else rebuilt)."""
        if (i, j) in self.answers:
            return self.answers[(i, j)]
        return Answer(self.batch.queries[i].query_id, self.model_names[j], self.text[i, j], float(self.cost[i, j]),
                      error_kind=self.error[i, j])


def thresholds(tau_j, n: int, k: int, task_types: Sequence[str | None] | None = None) -> np.ndarray:
    """(n, k) acceptance threshold per query and step from: a number; a mapping task type -> threshold with a
    '*' default (EMAFusion's tau_j per task type); or a tuple with one threshold per judged step (FrugalGPT)."""
    if isinstance(tau_j, Mapping):
        if "*" not in tau_j:
            raise ValueError("tau_j per task type needs a '*' default")
        if len(tau_j) == 1:
            return np.full((n, k), float(tau_j["*"]))
        types = task_types if task_types is not None else [None] * n
        per_row = np.array([float(tau_j.get(t, tau_j["*"])) for t in types])
        return np.repeat(per_row[:, None], k, axis=1)
    t = np.atleast_1d(np.asarray(tau_j, float))
    if t.size == 1:
        return np.full((n, k), float(t[0]))
    if t.size < k - 1:
        raise ValueError(f"{t.size} per-step thresholds for a cascade of {k} candidates")
    return np.broadcast_to(np.r_[t[: k - 1], np.inf], (n, k)).copy()


def run_cascade(state: State, candidates: np.ndarray, panel: Panel | None, tau: np.ndarray,
                router_cost: np.ndarray | None = None, select: str = "last") -> Decision:
    """candidates: (n, k) model indices cheapest first, -1 = none; tau: (n, k) thresholds (see `thresholds`).
    With panel None every query's first candidate answers (no cascade). select: 'last' returns the answer the
    cascade stopped at; 'support' (answer selection, the paper's fusion) returns, among the answers paid for, one
    of the answer with the highest support (see `select_by_support`)."""
    if select not in SELECTS:
        raise ValueError(f"select must be one of {SELECTS}, got {select!r}")
    cand = np.asarray(candidates, int)
    n, k = cand.shape
    rows_all = np.arange(n)
    n_valid = (cand >= 0).sum(axis=1)
    if n and (n_valid == 0).any():
        raise ValueError("every query needs at least one candidate")
    final = np.full(n, -1)
    active = np.ones(n, bool)
    best_conf = np.full(n, -np.inf)  # for the fallback: the answer the panel trusted most so far
    best_model = np.full(n, -1)
    for step in range(k):
        c = cand[:, step]
        here = active & (c >= 0)
        if not here.any():
            break
        for j in np.unique(c[here]):
            rows = rows_all[here & (c == j)]
            fresh = rows[~state.paid[rows, j]]
            state.buy(fresh, int(j))
            state.ran[fresh, j] = True
        final[here] = c[here]
        is_last = here & ((step == n_valid - 1) | (panel is None))
        cc = np.where(here, c, 0)
        judging = here & ~is_last & state.readable[rows_all, cc]
        accept = np.zeros(n, bool)
        if panel is not None and judging.any():
            conf = panel.assess(state, rows_all[judging], cc[judging])
            ok = ~np.isnan(conf)
            rows = rows_all[judging]
            accept[rows[ok & (conf >= tau[judging, step])]] = True
            better = ok & (conf > best_conf[rows])
            best_conf[rows[better]], best_model[rows[better]] = conf[better], cc[judging][better]
        active &= ~(accept | is_last)
    # fallback: the returned candidate's call failed -> the best answer already paid for, if any
    fallback = np.zeros(n, bool)
    dead = state.failed[rows_all, np.maximum(final, 0)] & (final >= 0)
    for i in np.flatnonzero(dead):
        run_ok = [j for j in cand[i] if j >= 0 and state.ran[i, j] and not state.failed[i, j]]
        bought_ok = [j for j in np.flatnonzero(state.paid[i] & ~state.failed[i])]
        pick = best_model[i] if best_model[i] >= 0 else (run_ok[-1] if run_ok else (bought_ok[-1] if bought_ok else -1))
        if pick >= 0:
            final[i], fallback[i] = int(pick), True
    if select == "support" and n:
        final = select_by_support(state, final)
    return Decision(final=final, ran=state.ran.copy(), judge_calls=state.judge_calls.copy(),
                    judge_cost=state.judge_cost.copy(),
                    router_cost=np.zeros(n) if router_cost is None else np.asarray(router_cost, float),
                    fallback=fallback)


SELECTS = ("last", "support")


def select_by_support(state: State, final: np.ndarray) -> np.ndarray:
    """Answer selection: group the readable answers paid for (by the cascade or a judge) by their extracted answer
    (judges/extract.py; code and free text: token-set similarity >= 0.5); a group's support is the sum of its models'
    predicted correctness (the routers' `state.predicted`; 1 each without predictions); return the most confident
    model of the best-supported group (ties: the answer the cascade stopped at). Nothing here reads a score."""
    from .judges.state_verifier import answer_key, keys_agree

    n, m = state.paid.shape
    memo = state.batch.cached(("answer-agreement", tuple(state.model_names)), lambda: {
        "keys": np.full((n, m), None, object), "have": np.zeros((n, m), bool),
        "ok": np.zeros((n, m), bool), "eq": np.zeros((n, m, m)), "eq_have": np.zeros((n, m, m), bool)})
    valid = state.paid & state.readable & ~state.failed
    queries = state.batch.queries
    new = valid & ~memo["have"]
    if new.any():
        for i, j in zip(*np.nonzero(new)):
            memo["keys"][i, j] = answer_key(queries[i].answer_format, state.text[i, j])
            memo["ok"][i, j] = memo["keys"][i, j] is not None
        memo["have"] |= new
    has_key = valid & memo["ok"]
    need = has_key[:, :, None] & has_key[:, None, :]
    need &= ~memo["eq_have"]
    if need.any():
        for i, a, b in zip(*np.nonzero(need)):
            v = keys_agree(memo["keys"][i, a], memo["keys"][i, b])
            memo["eq"][i, a, b] = float(not np.isnan(v) and v >= 0.5)
        memo["eq_have"] |= need
    eq = memo["eq"] * (has_key[:, :, None] & has_key[:, None, :])
    w = np.ones((n, m)) if state.predicted is None else np.nan_to_num(np.asarray(state.predicted, float), nan=0.5)
    w = np.clip(w, 1e-6, None) * has_key
    rows = np.arange(n)
    f = np.maximum(final, 0)
    support = (eq * w[:, None, :]).sum(2) + 1e-9 * eq[rows, :, f]  # ties: the group of the stopping answer
    support = np.where(has_key, support, -np.inf)
    best = np.argmax(support, axis=1)
    member = eq[rows, best, :] > 0
    pick = np.argmax(np.where(member, w + 1e-9 * (np.arange(m)[None, :] == f[:, None]), -np.inf), axis=1)
    use = has_key.any(1) & (final >= 0)
    return np.where(use, pick, final)


def confidences_on(batch: Batch, executor, model_names: list[str], judge, model: int) -> np.ndarray:
    """A judge's confidence in `model`'s answer on every query of a batch (NaN: nothing to read), outside any
    cascade: for threshold grids and judge diagnostics. Memoised on the batch like the cascade's own judging."""
    state = State(batch, model_names, executor)
    rows = np.arange(len(batch))
    state.buy(rows, model)
    return judge.judge_rows(state, rows, np.full(len(batch), model))


def run_adaptive(state: State, pool: np.ndarray, panel: Panel, price: float, unit_cost: np.ndarray,
                 router_cost: np.ndarray | None = None) -> Decision:
    """Adaptive next step (cascade routing in the sense of Dekoninck et al., ICML 2025): after each answer, run
    next the pool model with the best expected quality gain net of its price, or stop.

    pool: (n, k) each query's candidate models (-1 = none). A run answer's quality is the panel's confidence in
    it (post hoc; where the panel abstains, the router's prediction); a model not yet run has the routers'
    ex-ante predicted correctness (`state.predicted`). For query i with current best q, running model j gains
    max(p_ij - q, 0) and costs price x its expected cost / the dearest pool model's; the best j runs when its net
    gain is positive (the first step always runs one: the best net gain, as a router would pick). The answer
    returned is the run answer with the highest quality (one paid model's reply). Every call is charged as in
    run_cascade; nothing here reads a score."""
    cand = np.asarray(pool, int)
    n, k = cand.shape
    if n and ((cand >= 0).sum(1) == 0).any():
        raise ValueError("every query needs at least one candidate")
    m = len(state.model_names)
    pred = (np.full((n, m), 0.5) if state.predicted is None
            else np.nan_to_num(np.asarray(state.predicted, float), nan=0.5))
    unit = np.asarray(unit_cost, float)
    scale = max(float(unit[cand[cand >= 0]].max()) if (cand >= 0).any() else 1.0, 1e-12)
    rows_all = np.arange(n)
    quality = np.full((n, m), -np.inf)  # post-hoc quality of run answers
    done = np.zeros((n, k), bool) | (cand < 0)
    active = np.ones(n, bool)
    for step in range(k):
        if not active.any():
            break
        q_now = np.where(np.isfinite(quality).any(1), quality.max(1), 0.0)
        safe = np.maximum(cand, 0)
        gain = np.maximum(pred[rows_all[:, None], safe] - q_now[:, None], 0.0) - price * unit[safe] / scale
        if step == 0:
            gain = pred[rows_all[:, None], safe] - price * unit[safe] / scale  # the first answer is bought anyway
        gain = np.where(done, -np.inf, gain)
        best = np.argmax(gain, axis=1)
        go = active & np.isfinite(gain[rows_all, best]) & ((gain[rows_all, best] > 0) | (step == 0))
        if not go.any():
            break
        pick = cand[rows_all, best]
        for j in np.unique(pick[go]):
            rows = rows_all[go & (pick == j)]
            fresh = rows[~state.paid[rows, j]]
            state.buy(fresh, int(j))
            state.ran[fresh, j] = True
            readable = rows[state.readable[rows, j] & ~state.failed[rows, j]]
            q = np.full(len(readable), np.nan)
            if len(readable):
                q = panel.assess(state, readable, np.full(len(readable), int(j)))
            quality[readable, j] = np.where(np.isnan(q), pred[readable, j], q)
            dead = rows[~(state.readable[rows, j] & ~state.failed[rows, j])]
            quality[dead, j] = np.where(state.failed[dead, j], -np.inf, -1.0)  # ran, nothing to read
        done[rows_all[go], best[go]] = True
        active &= go
    final = np.argmax(np.where(state.ran, quality, -np.inf), axis=1)
    none = ~np.isfinite(np.where(state.ran, quality, -np.inf).max(1))  # every run call failed
    if none.any():
        final[none] = np.array([np.flatnonzero(state.ran[i])[-1] for i in np.flatnonzero(none)], int)
    return Decision(final=final, ran=state.ran.copy(), judge_calls=state.judge_calls.copy(),
                    judge_cost=state.judge_cost.copy(),
                    router_cost=np.zeros(n) if router_cost is None else np.asarray(router_cost, float),
                    fallback=np.zeros(n, bool))
