"""State-aware verifier: P(candidate's answer is right) from what the cascade knows at that step.

Features of (query i, candidate j, the answers bought so far), all read from the cascade's State:
- the query: a PCA reduction of its embedding and its answer format;
- the candidate: which model it is, the routers' ex-ante predicted correctness of it (`state.predicted`), and its
  answer's format features (did an answer parse with judges/extract.py, log length, hedging words);
- the answers already bought (by the cascade or by judges): how many, how many agree with the candidate, which
  models agree (one column per model: 1 agrees, 0 disagrees, missing = not bought), the agreeing and the disagreeing
  models' predicted correctness (summed and at most), and the strongest predicted model seen so far.

Fitted on the fit split with cross-fitting: the predicted correctness it trains on is out-of-fold (the caller
passes routers' predictions made by routers that never saw those queries), and the contexts (which other models
were bought) are sampled per (query, candidate) the way a cheapest-first cascade meets them. The classifier is
scikit-learn's HistGradientBoostingClassifier; what is kept is plain arrays (each tree's node table), evaluated by
`TreeEnsemble` in numpy, so saving needs no pickle. A verdict is a deterministic function of (query, candidate,
set of readable bought answers) within a batch: it is memoised per batch on that key, keyed by the fitted object.
Runs locally: 0 USD per call, every call counted. Never reads a score.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .extract import EXACT_EXTRACTORS, extract_answer, extract_code, similarity, token_set

# matched on lowercased text (3x faster than a case-insensitive pattern)
HEDGES = re.compile(r"\b(?:not sure|i think|maybe|perhaps|might|possibly|unclear|unsure|probably|i believe|"
                    r"not certain|cannot determine|can't determine|it seems|likely)\b")
FORMATS = ("multiple_choice", "number", "math", "literal", "code", "free_text")
N_REDUCED = 16
MAX_ROWS = 100_000  # training rows (query, candidate, context) at most: bigger fit splits are subsampled by query
_UNSET = object()


def answer_key(answer_format: str, text: str | None):
    """What agreement compares: the extracted answer (exact formats), else the token set (code, free text)."""
    if not text:
        return None
    if answer_format in EXACT_EXTRACTORS:
        return extract_answer(answer_format, text)
    if answer_format == "code":
        code = extract_code(text)
        return None if code is None else frozenset(token_set(code))
    return frozenset(token_set(text))


def keys_agree(a, b) -> float:
    """1/0 for extracted answers, Jaccard similarity for token sets; NaN when either has nothing to compare."""
    if a is None or b is None:
        return np.nan
    if isinstance(a, frozenset):
        if not a and not b:
            return 1.0
        return len(a & b) / len(a | b)
    return float(a == b)


def answer_features(answer_format: str, text: str | None, key=_UNSET) -> tuple[float, float, float]:
    """(parsed, log length / 10, hedging words) of one reply; key: its answer_key when already extracted."""
    if not text:
        return 0.0, 0.0, 0.0
    key = answer_key(answer_format, text) if key is _UNSET else key
    return float(key is not None), float(np.log1p(len(text)) / 10.0), float(len(HEDGES.findall(text[:4000].lower())))


class TreeEnsemble:
    """A binary gradient-boosted tree ensemble as plain arrays (from a fitted HistGradientBoostingClassifier):
    per node feature, threshold, missing-goes-left, left, right, is_leaf, value; the trees' root offsets."""

    FIELDS = ("feature", "threshold", "missing_left", "left", "right", "leaf", "value")

    def __init__(self, arrays: dict, baseline: float):
        self.arrays = {k: np.asarray(arrays[k]) for k in self.FIELDS + ("roots",)}
        self.baseline = float(baseline)

    @classmethod
    def from_sklearn(cls, clf) -> "TreeEnsemble":
        parts = {k: [] for k in cls.FIELDS}
        roots, offset = [], 0
        for (predictor,) in clf._predictors:
            nodes = predictor.nodes
            if getattr(predictor, "binned_left_cat_bitsets", np.zeros((0,))).size and nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(float))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(float))
            offset += len(nodes)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        arrays["roots"] = np.asarray(roots, np.int64)
        return cls(arrays, float(np.ravel(clf._baseline_prediction)[0]))

    def decision(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        x = np.asarray(x, float)
        n = len(x)
        raw = np.full(n, self.baseline)
        rows = np.arange(n)
        for root in a["roots"]:
            node = np.full(n, root)
            for _ in range(64):
                inner = ~a["leaf"][node]
                if not inner.any():
                    break
                nd = node[inner]
                v = x[rows[inner], a["feature"][nd]]
                go_left = np.where(np.isnan(v), a["missing_left"][nd], v <= a["threshold"][nd])
                node[inner] = np.where(go_left, a["left"][nd], a["right"][nd])
            raw += a["value"][node]
        return raw

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(x)))


class StateVerifier:
    """The fitted core (reduction + ensemble); `judge(peers)` gives the judges the panel names."""

    def __init__(self, n_reduced: int = N_REDUCED, contexts: int = 2, max_context: int = 3, max_iter: int = 100,
                 learning_rate: float = 0.08, max_leaf_nodes: int = 15, min_samples_leaf: int = 40,
                 drop: Sequence[str] = (), max_rows: int | None = MAX_ROWS):
        """drop: feature groups left out (ablations): query, answer, predicted, agreement. max_rows: when fit has
        more queries than max_rows / (models x contexts), a seeded subset of that many queries trains the trees
        (a size rule: the fit's cost stays bounded on big suites; None: every query)."""
        self.drop, self.max_rows = tuple(drop), max_rows
        self.n_reduced, self.contexts, self.max_context = n_reduced, contexts, max_context
        self.max_iter, self.learning_rate = max_iter, learning_rate
        self.max_leaf_nodes, self.min_samples_leaf = max_leaf_nodes, min_samples_leaf
        self.model_names: list[str] = []
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.ensemble_: TreeEnsemble | None = None
        self.constant_: float | None = None
        self.calls = 0

    # ---- features ---------------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        m = len(self.model_names)
        return self.components_.shape[0] + len(FORMATS) + m + 4 + 9 + m

    def reduce(self, embeddings: np.ndarray | None, n: int) -> np.ndarray:
        d = self.components_.shape[0]
        if embeddings is None or embeddings.shape[1] != self.mean_.shape[0]:
            return np.zeros((n, d))
        return (np.asarray(embeddings, float) - self.mean_) @ self.components_.T

    def features(self, reduced, fmt, cand, pred, ans, known, agree) -> np.ndarray:
        """reduced (r, d); fmt (r,) format index; cand (r,) model index; pred (r, m) predicted correctness (NaN:
        none); ans (r, 4) candidate answer features (readable, parsed, length, hedges); known (r, m) readable
        answers bought besides the candidate; agree (r, m) agreement with them (NaN where not comparable)."""
        r, m = known.shape
        rows = np.arange(r)
        fmt_1h = np.zeros((r, len(FORMATS)))
        fmt_1h[rows, fmt] = 1.0
        cand_1h = np.zeros((r, m))
        cand_1h[rows, cand] = 1.0
        p = np.nan_to_num(pred, nan=0.5)
        pc = p[rows, cand]
        ag = np.where(known, agree, np.nan)
        comparable = known & ~np.isnan(ag)
        a0 = np.where(comparable, ag, 0.0)
        n_known = known.sum(1)
        n_cmp = comparable.sum(1)
        agree_sum = a0.sum(1)
        w_agree = (a0 * p).sum(1)
        w_dis = (np.where(comparable, 1.0 - a0, 0.0) * p).sum(1)
        max_agree = np.where(comparable & (a0 >= 0.5), p, 0.0).max(1)
        max_dis = np.where(comparable & (a0 < 0.5), p, 0.0).max(1)
        best_known = np.where(known, p, 0.0).max(1)
        share = np.where(n_cmp > 0, agree_sum / np.maximum(n_cmp, 1), np.nan)
        context = np.stack([n_known, n_cmp, agree_sum, share, w_agree, w_dis, max_agree - max_dis,
                            best_known, pc - best_known], axis=1)
        groups = {"query": [reduced, fmt_1h], "model": [cand_1h], "predicted": [pc[:, None]], "answer": [ans],
                  "agreement": [context, ag]}
        if "predicted" in self.drop:  # nothing of the router's predictions: the weighted agreement goes too
            context = context.copy()
            context[:, 4:] = 0.0
            groups["agreement"] = [context, ag]
        return np.hstack([np.zeros_like(b) if g in self.drop else b for g, bs in groups.items() for b in bs])

    # ---- fitting -----------------------------------------------------------------------------------------
    def fit(self, model_names: Sequence[str], embeddings: np.ndarray, formats: Sequence[str], texts: np.ndarray,
            predicted_oof: np.ndarray, scores: np.ndarray, unit_cost: np.ndarray, seed: int = 0) -> "StateVerifier":
        """texts: (n, m) fit answers (None: no text); predicted_oof: (n, m) out-of-fold predicted correctness;
        scores: (n, m) fit labels. Contexts per (query, candidate): none, then random sets of bought models, the
        cheaper ones more likely (a cascade runs cheapest first)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model_names = list(model_names)
        n, m = np.shape(scores)
        x = np.asarray(embeddings, float)
        self.mean_ = x.mean(0)
        _, _, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        self.components_ = vt[: min(self.n_reduced, len(vt))]
        reduced = self.reduce(x, n)
        fmt = np.array([FORMATS.index(f) if f in FORMATS else FORMATS.index("free_text") for f in formats])
        rng = np.random.default_rng([seed, 1313])
        if self.max_rows is not None and n * m * self.contexts > self.max_rows:
            sub = np.sort(rng.permutation(n)[: max(1, self.max_rows // (m * self.contexts))])
            reduced, fmt, texts = reduced[sub], fmt[sub], np.asarray(texts, object)[sub]
            predicted_oof, scores, n = np.asarray(predicted_oof)[sub], np.asarray(scores, float)[sub], len(sub)
        keys = np.array([[answer_key(FORMATS[fmt[i]], texts[i, j]) for j in range(m)] for i in range(n)], object)
        ans = answer_table(fmt, texts, keys)
        rank = np.argsort(np.argsort(unit_cost))  # cost rank of each model
        ri = np.repeat(np.arange(n), m * self.contexts)
        rj = np.tile(np.repeat(np.arange(m), self.contexts), n)
        ctx = np.tile(np.arange(self.contexts), n * m)
        size = np.where(ctx == 0, 0, rng.integers(1, max(min(self.max_context, m - 1), 1) + 1, size=len(ri)))
        # weighted sampling without replacement (keys u^(1/w)): cheaper models than the candidate 3x as likely
        w = np.where(rank[None, :] < rank[rj][:, None], 3.0, 1.0)
        keyv = rng.random((len(ri), m)) ** (1.0 / w)
        keyv[np.arange(len(ri)), rj] = -1.0
        order = np.argsort(-keyv, axis=1)
        known = np.zeros((len(ri), m), bool)
        take = np.arange(m)[None, :] < size[:, None]
        np.put_along_axis(known, order, take, axis=1)
        readable = np.array([[t is not None and t != "" for t in row] for row in texts]).reshape(n, m)
        known &= readable[ri]
        pair = pairwise_agreement(keys)
        agree = np.where(known, pair[ri, rj], np.nan)
        X = self.features(reduced[ri], fmt[ri], rj, predicted_oof[ri], ans[ri, rj], known, agree)
        y = (np.asarray(scores, float)[ri, rj] >= 0.5).astype(int)
        # the cascade judges only readable answers; a NaN score (no labelled outcome) trains nothing
        keep = readable[ri, rj] & ~np.isnan(np.asarray(scores, float)[ri, rj])
        X, y = X[keep], y[keep]
        if len(np.unique(y)) < 2:
            self.constant_ = float(y[0]) if len(y) else 0.5
            return self
        clf = HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                             max_leaf_nodes=self.max_leaf_nodes,
                                             min_samples_leaf=self.min_samples_leaf, l2_regularization=1.0,
                                             early_stopping=False, random_state=seed)
        clf.fit(X, y)
        self.ensemble_ = TreeEnsemble.from_sklearn(clf)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.constant_ is not None:
            return np.full(len(X), self.constant_)
        return self.ensemble_.predict_proba(X)

    # ---- saving (plain arrays) ------------------------------------------------------------------------------
    def to_arrays(self, prefix: str, out: dict) -> dict:
        out[f"{prefix}.mean"], out[f"{prefix}.components"] = self.mean_, self.components_
        if self.ensemble_ is not None:
            for k, v in self.ensemble_.arrays.items():
                out[f"{prefix}.tree.{k}"] = v
        return {"model_names": self.model_names, "constant": self.constant_,
                "baseline": None if self.ensemble_ is None else self.ensemble_.baseline,
                "hyper": {"n_reduced": self.n_reduced, "contexts": self.contexts, "max_context": self.max_context,
                          "max_iter": self.max_iter, "learning_rate": self.learning_rate,
                          "max_leaf_nodes": self.max_leaf_nodes, "min_samples_leaf": self.min_samples_leaf,
                          "drop": list(self.drop), "max_rows": self.max_rows}}

    @classmethod
    def from_arrays(cls, prefix: str, arrays: dict, meta: dict) -> "StateVerifier":
        v = cls(**meta["hyper"])
        v.model_names = list(meta["model_names"])
        v.mean_, v.components_ = arrays[f"{prefix}.mean"], arrays[f"{prefix}.components"]
        v.constant_ = meta["constant"]
        if meta["baseline"] is not None:
            v.ensemble_ = TreeEnsemble({k: arrays[f"{prefix}.tree.{k}"] for k in TreeEnsemble.FIELDS + ("roots",)},
                                       meta["baseline"])
        return v

    # ---- judging ---------------------------------------------------------------------------------------------
    def judge(self, peers: Sequence[str] = ()) -> "StateVerifierJudge":
        return StateVerifierJudge(self, tuple(peers))

    def confidences(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        """P(right) of models[r]'s answer on rows[r] given the readable answers bought so far; memoised."""
        m = len(state.model_names)
        if state.model_names != self.model_names:
            return np.full(len(rows), np.nan)
        known = state.paid[rows] & state.readable[rows]
        known[np.arange(len(rows)), models] = False
        bits = known.astype(np.int64) @ (np.int64(1) << np.arange(m, dtype=np.int64))
        keys = (rows.astype(np.int64) * m + models) * (np.int64(1) << m) + bits
        memo = _memo(state, self)
        found, vals = memo.get(keys)
        if (~found).any():
            todo = np.flatnonzero(~found)
            vals[todo] = self._compute(state, rows[todo], models[todo], known[todo])
            memo.put(keys[todo], vals[todo])
        return vals

    def _compute(self, state, rows, models, known) -> np.ndarray:
        batch = state.batch
        cache = batch.cached((self, "batch-features"), lambda: _BatchFeatures(self, state))
        ans = cache.answers(state, rows, models)
        ks = cache.keys(state, rows, known | (np.eye(known.shape[1], dtype=bool)[models]))
        r, m = known.shape
        agree = np.full((r, m), np.nan)
        for a in range(r):
            ka = ks[a][models[a]]
            for l in np.flatnonzero(known[a]):
                agree[a, l] = keys_agree(ka, ks[a][l])
        pred = state.predicted[rows] if state.predicted is not None else np.full((r, m), np.nan)
        X = self.features(cache.reduced[rows], cache.fmt[rows], models, pred, ans, known, agree)
        return self.predict(X)


class StateVerifierJudge:
    """The state verifier as a panel judge; with peers it first buys their answers (charged to the judges) so
    they are part of the state it reads. Names: 'state-verifier', 'state-verifier+peer:<model>'."""

    def __init__(self, core: StateVerifier, peers: tuple[str, ...] = ()):
        self.core, self.peers = core, peers
        self.name = "state-verifier" + "".join(f"+peer:{p}" for p in peers)

    def judge_rows(self, state, rows: np.ndarray, models: np.ndarray) -> np.ndarray:
        rows, models = np.asarray(rows, int), np.asarray(models, int)
        for p in self.peers:
            if p in state.model_names:
                pj = state.model_index(p)
                state.buy(rows[models != pj], pj, for_judge=True)
        out = self.core.confidences(state, rows, models)
        out = np.where(state.readable[rows, models], out, np.nan)
        state.charge_judge(rows, 0.0, 1)
        self.core.calls += len(rows)
        return out


class _BatchFeatures:
    """Per-batch arrays the verifier reuses: reduced embeddings, formats, and lazily extracted answer keys."""

    def __init__(self, core: StateVerifier, state):
        batch = state.batch
        n, m = len(batch), len(state.model_names)
        emb = getattr(state, "embeddings", None)
        emb = batch.embeddings if emb is None else emb
        self.reduced = core.reduce(emb, n)
        self.fmt = np.array([FORMATS.index(q.answer_format) if q.answer_format in FORMATS
                             else FORMATS.index("free_text") for q in batch.queries])
        self._keys = np.full((n, m), None, object)
        self._have = np.zeros((n, m), bool)
        self._ans = np.zeros((n, m, 4))
        self._ans_have = np.zeros((n, m), bool)

    def keys(self, state, rows, mask):
        for a, i in enumerate(rows):
            for j in np.flatnonzero(mask[a] & ~self._have[i]):
                self._keys[i, j] = answer_key(FORMATS[self.fmt[i]], state.text[i, j]) if state.readable[i, j] else None
                self._have[i, j] = True
        return self._keys[rows]

    def answers(self, state, rows, models):
        todo = ~self._ans_have[rows, models]
        for i, j in zip(rows[todo], models[todo]):
            text = state.text[i, j] if state.readable[i, j] else None
            self._ans[i, j] = (float(bool(text)),) + answer_features(FORMATS[self.fmt[i]], text)
            self._ans_have[i, j] = True
        return self._ans[rows, models]


class _Memo:
    """Sorted int64 keys -> float values, looked up and extended in vectorised steps."""

    def __init__(self):
        self.keys, self.vals = np.zeros(0, np.int64), np.zeros(0)

    def get(self, keys):
        pos = np.searchsorted(self.keys, keys)
        pos_c = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (len(self.keys) > 0) & (self.keys[pos_c] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        vals = np.where(found, self.vals[pos_c] if len(self.keys) else 0.0, np.nan)
        return found, vals

    def put(self, keys, vals):
        keys, first = np.unique(keys, return_index=True)
        k = np.concatenate([self.keys, keys])
        v = np.concatenate([self.vals, np.asarray(vals, float)[first]])
        order = np.argsort(k, kind="stable")
        self.keys, self.vals = k[order], v[order]


def _memo(state, core) -> _Memo:
    """The memo of one batch for one fitted verifier and one predictions array (kept alive beside it)."""
    pred = state.predicted
    table = state.batch.cached((core, "state-memo"), dict)
    key = None if pred is None else id(pred)
    if key not in table:
        table[key] = (pred, _Memo())
    return table[key][1]


def answer_table(fmt: np.ndarray, texts: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
    """(n, m, 4) candidate answer features: readable, parsed, log length, hedging words (keys: the answer keys
    already extracted, reused for 'parsed')."""
    n, m = texts.shape
    out = np.zeros((n, m, 4))
    for i in range(n):
        for j in range(m):
            t = texts[i, j]
            key = _UNSET if keys is None else keys[i, j]
            out[i, j] = (float(bool(t)),) + answer_features(FORMATS[fmt[i]], t, key)
    return out


def pairwise_agreement(keys: np.ndarray) -> np.ndarray:
    """(n, m, m) agreement of every two models' answer keys per query (NaN: not comparable)."""
    n, m = keys.shape
    out = np.full((n, m, m), np.nan)
    for i in range(n):
        for a in range(m):
            for b in range(a + 1, m):
                out[i, a, b] = out[i, b, a] = keys_agree(keys[i, a], keys[i, b])
    return out


def agreement_table(keys: np.ndarray, ri: np.ndarray, rj: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(r, m) agreement of the candidate's key with each known model's key (NaN elsewhere)."""
    r, m = known.shape
    out = np.full((r, m), np.nan)
    for a in range(r):
        ka = keys[ri[a], rj[a]]
        if ka is None:
            continue
        for l in np.flatnonzero(known[a]):
            out[a, l] = keys_agree(ka, keys[ri[a], l])
    return out
