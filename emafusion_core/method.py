"""EMAFusion, the method: one fitted object that the harness, `ask` and `serve` all run.

    method = EMAFusion().fit(training_set)           # taxonomy classifier + suitability, learned router,
                                                     # learned verifier, peer judges: all on the fit split
    points = method.calibrate(calibrate_set, ...)    # one knob sweep on calibrate -> an OperatingPoint per budget
    decision, state = method.decide(batch, executor, point)   # routing + the judged cascade

What is fitted, once per training set (our defaults where the paper is silent, each a constructor argument):
- taxonomy labels of fit queries from the suite's own label columns or the documented rules
  (labelling_rules.yaml); at routing time only the fast classifier over the query embedding decides;
- the fast classifier, the suitability table Phi (shrunk by `prior_strength` pseudo-queries), the learned
  router (torch; early stopping on a seeded `validation_share` of fit, so calibrate stays for knob choice),
  the learned verifier, and the peer judges (the most accurate cheap model of each of `n_peers` families).
The slow LLM classifier is not part of replay (no cached replies): lambda = 0 (said in the README).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from itertools import product
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .calibration import Sweep, calibrate_budgets, choose_hyper, choose_per_group, default_budgets, frontier_prices
from .cascade import SELECTS, State, run_adaptive, run_cascade, thresholds
from .execution import Batch, stable_rng
from .judges import LearnedVerifier, Panel, PeerAgreementJudge
from .judges.state_verifier import StateVerifier
from .learned import LearnedRouter
from .learned.selection import select_top_k
from .results import Decision, grade
from .taxonomy import (AXES, FastClassifier, RuleLabeller, SuitabilityTable, TaxonomyRouter, default_rules,
                       default_taxonomy, labels_for)
from .routing import Route
from .taxonomy.classifiers import confidence, top_labels

ROUTERS = ("taxonomy", "learned", "hybrid")
# Knob grids (our defaults; every value is chosen on calibrate, never on test).
LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)
HYBRID_LAMBDAS = (0.0, 0.05, 0.2, 0.8)
TAU_FAM = (0.5, 0.8, 0.95)
TAU_J = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
GAIN_PRICES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)  # adaptive next step: quality a dearest-model call must gain
NEXT_STEPS = ("chain", "adaptive")


@dataclass(frozen=True)
class OperatingPoint:
    """Every knob a deployed EMAFusion runs with. Chosen on calibrate per budget, written to a file by
    `make reproduce`, named by the YAML config (`operating_point: <file>#<budget>`)."""

    router: str = "hybrid"  # taxonomy | learned | hybrid
    tau_c: float = 0.7  # suitability a model needs on the query's categories (taxonomy path)
    tau_fam: float = 0.8  # classifier confidence that makes a query familiar (hybrid switch)
    cost_weight: float = 0.05  # lambda: predicted score - lambda * normalised cost (learned path)
    k: int = 3  # candidates per query
    cascade: bool = True  # False: the router's single pick answers, nothing is judged
    panel: tuple[str, ...] = ("verifier",)  # judges: verifier, peer:<model>, llm:<model>
    rule: str = "mean"  # how the panel's confidences combine (mean, majority, unanimity)
    tau_j: tuple[tuple[str, float], ...] = (("*", 0.7),)  # acceptance threshold per task type, '*' = default
    budget_usd: float | None = None  # the budget it was calibrated for (None: set by hand)
    select: str = "last"  # cascade stops: 'last' returns that answer, 'support' the best-supported paid answer
    # chains per category (issue 13 item 3): the taxonomy axes whose predicted labels name a query's category
    # ('task_type' or 'task_type/complexity'); tau_j keys other than '*' are such categories; `direct`: categories
    # answered by the router's pick alone (no cascade); `k_by`: categories whose chain keeps only its last (dearest)
    # k candidates, i.e. fewer cheap models before the strong one
    categories: str = "task_type"
    direct: tuple[str, ...] = ()
    k_by: tuple[tuple[str, int], ...] = ()
    # 'chain': the candidates cheapest first, each accepted at tau_j; 'adaptive' (item 4): after each answer the
    # next candidate (or stop) by expected quality gain net of gain_price x its normalised cost (run_adaptive)
    next_step: str = "chain"
    gain_price: float = 0.1

    def __post_init__(self):
        if self.router not in ROUTERS:
            raise ValueError(f"router must be one of {ROUTERS}, got {self.router!r}")
        if self.rule not in ("mean", "majority", "unanimity"):
            raise ValueError(f"rule must be mean, majority or unanimity, got {self.rule!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k must be an integer >= 1, got {self.k!r}")
        if "*" not in dict(self.tau_j):
            raise ValueError("tau_j needs a '*' default")
        if self.cascade and not self.panel:
            raise ValueError("a cascade needs at least one judge in its panel")
        if self.select not in SELECTS:
            raise ValueError(f"select must be one of {SELECTS}, got {self.select!r}")
        if self.next_step not in NEXT_STEPS:
            raise ValueError(f"next_step must be one of {NEXT_STEPS}, got {self.next_step!r}")
        if not self.categories or any(a not in AXES for a in self.categories.split("/")):
            raise ValueError(f"categories must be taxonomy axes joined by '/', e.g. 'task_type/complexity', "
                             f"got {self.categories!r}")
        if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for _, k in self.k_by):
            raise ValueError(f"k_by values must be integers >= 1, got {self.k_by!r}")

    def dial(self) -> list[str]:
        """The knobs a budget moves for this router kind, in the order `values` gives them."""
        names = {"taxonomy": ["tau_c"], "learned": ["cost_weight"], "hybrid": ["tau_fam", "tau_c", "cost_weight"]}
        last = "gain_price" if self.next_step == "adaptive" else "tau_j"
        return names[self.router] + ([last] if self.cascade else [])

    def values(self) -> tuple:
        """The dial's values, e.g. (0.5, 0.3012, 0.0, 0.7) for hybrid + cascade (tau_j: its '*' default)."""
        return tuple(dict(self.tau_j)["*"] if k == "tau_j" else getattr(self, k) for k in self.dial())

    def with_values(self, values) -> "OperatingPoint":
        """The same point with the dial set by hand (a budget explorer's sliders)."""
        values = tuple(values)
        if self.cascade and len(values) == len(self.dial()) - 1:  # no tau_j: the router alone (a cascade grid
            return replace(self, cascade=False, panel=(), tau_j=(("*", 0.7),), select="last",
                           next_step="chain").with_values(values)
        if len(values) != len(self.dial()):
            raise ValueError(f"expected {len(self.dial())} values for {self.dial()}, got {values}")
        changes = {k: float(v) for k, v in zip(self.dial(), values) if k != "tau_j"}
        if "tau_j" in self.dial():
            changes["tau_j"] = tuple(sorted({**dict(self.tau_j), "*": float(values[-1])}.items()))
        return replace(self, budget_usd=None, **changes)

    def label(self) -> str:
        """What a budget row reports in its knob column, e.g. '(0.5, 0.3012, 0.0, 0.7)'."""
        extra = [f"{t}:{v}" for t, v in self.tau_j if t != "*"] if self.cascade else []
        if self.cascade:
            extra += [f"{t}:direct" for t in self.direct] + [f"{t}:k={v}" for t, v in self.k_by]
        if self.select != "last":
            extra.append(f"select:{self.select}")
        return str(self.values() + tuple(extra))

    @property
    def by_category(self) -> bool:
        """Whether any knob differs per category (tau_j, direct, k_by)."""
        return bool(set(dict(self.tau_j)) - {"*"} or self.direct or self.k_by)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["panel"], d["tau_j"] = list(self.panel), dict(self.tau_j)
        d["direct"], d["k_by"] = list(self.direct), dict(self.k_by)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "OperatingPoint":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"operating point: unknown key {unknown[0]!r}")
        d = dict(d)
        if "panel" in d:
            d["panel"] = tuple(d["panel"])
        if "tau_j" in d:
            tau = d["tau_j"]
            d["tau_j"] = tuple(sorted(tau.items())) if isinstance(tau, dict) else (("*", float(tau)),)
        if "direct" in d:
            d["direct"] = tuple(d["direct"])
        if "k_by" in d:
            d["k_by"] = tuple(sorted((str(t), int(v)) for t, v in dict(d["k_by"]).items()))
        return cls(**d)


def fit_labels(queries) -> pd.DataFrame:
    """Taxonomy labels of fit queries: the suite's own label columns where given, else the documented rules."""
    frame = pd.DataFrame({"benchmark": [q.benchmark for q in queries], "category": [q.category for q in queries],
                          "answer_format": [q.answer_format for q in queries]})
    for axis in AXES:
        values = [q.metadata.get(axis) for q in queries]
        if any(v is not None for v in values):
            frame[axis] = values
    return labels_for(frame, RuleLabeller(default_taxonomy(), default_rules()))


def fit_verifier(training) -> LearnedVerifier:
    """The learned verifier of a training set (one per fit split: EMAFusion and the cascading baselines share it),
    trained on every model's recorded answer texts and fit-split labels."""
    def compute():
        view, executor = training.view, training.executor
        answers = {m: [executor.run(q, m).response or "" for q in view.queries] for m in training.model_names}
        return LearnedVerifier().fit(training.model_names, view.texts, answers, training.scores, seed=training.seed)

    return training.view.cached(("learned-verifier", tuple(training.model_names)), compute)


def fit_texts(training) -> np.ndarray:
    """(n, m) the fit split's recorded answer texts (None: no text), read once per training set."""
    def compute():
        view, executor = training.view, training.executor
        return np.array([[executor.run(q, m).response or None for m in training.model_names] for q in view.queries],
                        object).reshape(len(view), len(training.model_names))

    return training.view.cached(("fit-texts", tuple(training.model_names)), compute)


def out_of_fold_predictions(training, x: np.ndarray, encoder, unit_cost, k: int, validation_share: float,
                            n_folds: int, max_epochs: int | None = None) -> np.ndarray:
    """(n, m) each fit query's predicted correctness from a learned router fitted on the other folds of fit
    (early stopping on a seeded share of those folds): what the state verifier trains on, so its training inputs
    look like the predictions it meets on unseen queries. max_epochs: a cap on each fold router's epochs (None:
    early stopping alone). Capping at the epoch the method's own router stopped at makes this 3-4x cheaper but
    cost zeroeval 0.007 calibrate AIQ (verifier AUC 0.924 -> 0.917): not the default."""
    scores = np.asarray(training.scores, float)
    n = len(x)
    rng = stable_rng(training.suite, training.seed, training.split, "state-verifier-folds")
    fold = rng.permutation(n) % n_folds
    out = np.zeros(scores.shape)
    for f in range(n_folds):
        train = np.flatnonzero(fold != f)
        val = np.zeros(len(train), bool)
        val[rng.permutation(len(train))[: max(1, int(validation_share * len(train)))]] = True
        extra = {} if max_epochs is None else {"max_epochs": int(max_epochs)}
        router = LearnedRouter(encoder, list(training.model_names), unit_cost, k=k, seed=training.seed + 1000 * (f + 1),
                               **extra)
        router.fit_embeddings(x[train[~val]], scores[train[~val]], x[train[val]], scores[train[val]])
        out[fold == f] = router.predict_from_embeddings(x[fold == f])
    return out


def fit_state_verifier(training, x: np.ndarray, encoder, unit_cost, k: int, validation_share: float,
                       n_folds: int = 3, drop: Sequence[str] = (), max_epochs: int | None = None) -> StateVerifier:
    """The state-aware verifier of a training set, cross-fitted (see out_of_fold_predictions); drop: feature
    groups left out (ablations); max_epochs: the fold routers' epoch cap."""
    def compute():
        oof = training.view.cached(("out-of-fold-predicted", tuple(training.model_names), n_folds, max_epochs),
                                   lambda: out_of_fold_predictions(training, x, encoder, unit_cost, k,
                                                                   validation_share, n_folds, max_epochs))
        formats = [q.answer_format for q in training.view.queries]
        return StateVerifier(drop=drop).fit(training.model_names, x, formats, fit_texts(training), oof, training.scores,
                                   np.asarray(unit_cost, float), seed=training.seed)

    return training.view.cached(("state-verifier", tuple(training.model_names), n_folds, tuple(drop), max_epochs),
                                compute)


def choose_peers(model_names: list[str], families: dict[str, str], accuracy: np.ndarray, unit_cost: np.ndarray,
                 n_peers: int = 2) -> list[str]:
    """Our default: among models no dearer than the median, the most accurate (on fit) of each family, best
    n_peers families. Cheap peers keep the judges' cost a fraction of the strong model's."""
    cheap = unit_cost <= np.median(unit_cost)
    best_of_family: dict[str, int] = {}
    for j in np.flatnonzero(cheap & ~np.isnan(accuracy)):  # a model with no labelled outcome is no peer
        fam = families.get(model_names[j], model_names[j])
        if fam not in best_of_family or accuracy[j] > accuracy[best_of_family[fam]]:
            best_of_family[fam] = int(j)
    ranked = sorted(best_of_family.values(), key=lambda j: (-accuracy[j], unit_cost[j]))
    return [model_names[j] for j in ranked[:n_peers]]


class EMAFusion:
    """The method. Hyperparameters here; fitted state (trailing underscore) from `fit`."""

    def __init__(self, k: int = 3, prior_strength: float = 10.0, n_peers: int = 2, validation_share: float = 0.15,
                 encoder=None, n_tau_c: int = 8, state_verifier: bool = True, n_folds: int = 3,
                 require_taxonomy: bool = True):
        """encoder: embeds query texts that come without embeddings (live requests); replay batches bring
        theirs. state_verifier: also fit the state-aware verifier (cross-fitted over `n_folds` folds of fit) and
        offer it among the panels (calibrate chooses the panel)."""
        self.k, self.prior_strength, self.n_peers = k, prior_strength, n_peers
        self.state_verifier, self.n_folds = state_verifier, n_folds
        self.require_taxonomy = require_taxonomy  # False: a suite without taxonomy labels fits the learned parts
        self.validation_share, self.encoder, self.n_tau_c = validation_share, encoder, n_tau_c

    # ---- fitting ---------------------------------------------------------------------------------------------
    def fit(self, training) -> "EMAFusion":
        """training: a TrainingSet (data.training): queries with embeddings, scores and costs over model_names."""
        view, x = training.view, training.view.embeddings
        if x is None:
            x = self.encoder.encode(view.texts) if self.encoder is not None else None
        if x is None:
            raise ValueError("EMAFusion needs query embeddings: give the training set embeddings or an encoder")
        self.model_names_ = list(training.model_names)
        self.families_ = {m: training.families.get(m, m) for m in self.model_names_}
        self.taxonomy_ = default_taxonomy()
        labels = fit_labels(view.queries)
        labelled = labels.notna().all(axis=1).to_numpy()
        scores = np.asarray(training.scores, float)
        self.unit_cost_ = training.mean_cost
        self.taxonomy_unavailable_ = None
        if not labelled.any():
            reason = "no fit query has taxonomy labels: bring label columns or run the slow classifier"
            if self.require_taxonomy:
                raise ValueError(reason)
            # the learned router, verifier and peers still fit; routing by taxonomy (and so the hybrid) cannot
            self.taxonomy_unavailable_, self.taxonomy_router_ = reason, None
        else:
            fast = FastClassifier(self.taxonomy_, encoder=self.encoder, seed=training.seed).fit_embeddings(
                x[labelled], labels[labelled])
            suitability = SuitabilityTable(self.taxonomy_, self.model_names_, self.prior_strength).fit(
                self.taxonomy_.one_hot(labels[labelled]), scores[labelled])
            self.taxonomy_router_ = TaxonomyRouter(self.taxonomy_, fast, suitability, self.unit_cost_,
                                                   max_candidates=self.k)
        # learned router: early stopping on a fixed, seeded share of fit
        rng = stable_rng(training.suite, training.seed, training.split, "emafusion-validation")
        val = np.zeros(len(x), bool)
        val[rng.permutation(len(x))[: max(1, int(self.validation_share * len(x)))]] = True
        self.learned_ = LearnedRouter(self.encoder, self.model_names_, self.unit_cost_, k=self.k, seed=training.seed)
        self.learned_.fit_embeddings(x[~val], scores[~val], x[val], scores[val])
        self.verifier_ = fit_verifier(training)
        self.peers_ = choose_peers(self.model_names_, self.families_, training.accuracy, self.unit_cost_, self.n_peers)
        self.state_verifier_ = (fit_state_verifier(training, x, self.encoder, self.unit_cost_, self.k,
                                                   self.validation_share, self.n_folds)
                                if self.state_verifier else None)
        self._panels: dict = {}
        return self

    # ---- knob grids (what calibration sweeps) ----------------------------------------------------------------
    def panels(self) -> list[tuple[str, ...]]:
        """The verifier alone, then with each of the fitted peers added in order; then the state verifier alone
        and buying the first peer's answer before it judges."""
        panels = self.verifier_panels()
        if getattr(self, "state_verifier_", None) is not None:
            panels += [("state-verifier",)] + [(f"state-verifier+peer:{p}",) for p in self.peers_[:1]]
        return panels

    def verifier_panels(self) -> list[tuple[str, ...]]:
        """The learned verifier alone, then with each of the fitted peers added in order (panel_size 1-3)."""
        return [("verifier", *(f"peer:{p}" for p in self.peers_[:n])) for n in range(len(self.peers_) + 1)]

    def tau_c_grid(self, batch: Batch) -> list[float]:
        """Quantiles of the batch's suitability values (texts only: no label is read)."""
        qs = np.quantile(self._phi(batch), np.linspace(0.05, 0.95, self.n_tau_c))
        return sorted(set(np.round(qs, 4).tolist()))

    def grid(self, router: str, cascade: bool, panel: tuple[str, ...], batch: Batch,
             rule: str = "mean", selects: Sequence[str] = ("last",), no_cascade: bool = False,
             next_step: str = "chain") -> list[OperatingPoint]:
        """The knob grid of one variant and panel; selects: answer selections swept (cascade only); no_cascade:
        a cascade grid also holds the router-alone points ('never worse than its router'); next_step 'adaptive':
        gain_price is swept instead of tau_j (answer selection is its own: the best-judged run answer)."""
        tau_c = self.tau_c_grid(batch) if router != "learned" else [0.7]
        learned = [("learned", 0.0, 0.7, lam) for lam in LAMBDAS]
        # The hybrid nests its fallback: the learned router alone is the hybrid with nothing familiar, so its
        # points (with their finer cost weights) are hybrid knobs too and calibrate can never do worse than it.
        route_knobs = {"taxonomy": [("taxonomy", 0.0, t, 0.0) for t in tau_c], "learned": learned,
                       "hybrid": [("hybrid", *k) for k in product(TAU_FAM, tau_c, HYBRID_LAMBDAS)] + learned}[router]
        if cascade and next_step == "adaptive":
            points = [OperatingPoint(r, float(tc), float(tf), float(lam), self.k, True, tuple(panel), rule,
                                     next_step="adaptive", gain_price=float(g))
                      for (r, tf, tc, lam), g in product(route_knobs, GAIN_PRICES)]
            return points + (self.grid(router, False, (), batch, rule) if no_cascade else [])
        taus = TAU_J if cascade else (0.7,)
        points = [OperatingPoint(r, float(tc), float(tf), float(lam), self.k, cascade,
                                 tuple(panel) if cascade else (), rule, (("*", float(tj)),), select=sel)
                  for sel in (selects if cascade else ("last",)) for (r, tf, tc, lam), tj in product(route_knobs, taus)]
        if cascade and no_cascade:
            points += self.grid(router, False, (), batch, rule)
        return points

    # ---- per-batch quantities, memoised on the batch (keys hold the fitted object) ----------------------------
    def embed(self, batch: Batch) -> np.ndarray:
        """The batch's query embeddings: its own, else encoded once with the method's encoder."""
        return self._embeddings(batch)

    def _embeddings(self, batch: Batch) -> np.ndarray:
        if batch.embeddings is not None:
            return batch.embeddings
        if self.encoder is None:
            raise ValueError("this batch has no embeddings and the method has no encoder")
        return batch.cached((self, "embeddings"), lambda: np.asarray(self.encoder.encode(batch.texts)))

    def _probs(self, batch: Batch):
        return batch.cached((self, "probs"),
                            lambda: self.taxonomy_router_.fast.predict_proba_embeddings(self._embeddings(batch)))

    def _phi(self, batch: Batch) -> np.ndarray:
        return batch.cached((self, "phi"), lambda: self.taxonomy_router_.suitability.phi(self._probs(batch)))

    def _predicted(self, batch: Batch) -> np.ndarray:
        return batch.cached((self, "predicted"),
                            lambda: self.learned_.predict_from_embeddings(self._embeddings(batch)))

    def _task_types(self, batch: Batch) -> list[str]:
        return self._categories(batch, "task_type")

    def _categories(self, batch: Batch, axes: str = "task_type") -> list[str]:
        """Each query's category: its predicted labels on `axes` ('task_type', 'task_type/complexity'), joined by
        '/' (the fast classifier decides: no label column is read)."""
        def compute():
            labels = top_labels(self._probs(batch), self.taxonomy_)
            return ["/".join(map(str, row)) for row in labels[axes.split("/")].itertuples(index=False)]

        return batch.cached((self, "categories", axes), compute)

    def _taxonomy_route(self, batch: Batch, tau_c: float, tau_fam: float):
        def compute():
            d = self.taxonomy_router_.decide(self._probs(batch), tau_c=tau_c, tau_fam=tau_fam)
            return self.taxonomy_router_.chains(d, self.k), d.primary, d.familiar

        return batch.cached((self, "taxonomy-route", float(tau_c), float(tau_fam), self.k), compute)

    def _learned_route(self, batch: Batch, lam: float, k: int):
        def compute():
            pred = self._predicted(batch)
            return select_top_k(pred, self.unit_cost_, k, lam), select_top_k(pred, self.unit_cost_, 1, lam)[:, 0]

        return batch.cached((self, "learned-route", float(lam), k), compute)

    # ---- routing: the one hybrid switch -------------------------------------------------------------------------
    def route(self, batch: Batch, point: OperatingPoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidates (n, k) cheapest first with -1 padding, primary (n,), taxonomy_path (n,) bool)."""
        n, k = len(batch), point.k
        if point.router == "learned":
            cands, primary = self._learned_route(batch, point.cost_weight, k)
            return _pad(cands, k), primary, np.zeros(n, bool)
        tau_fam = 0.0 if point.router == "taxonomy" else point.tau_fam
        t_cands, t_primary, familiar = self._taxonomy_route(batch, point.tau_c, tau_fam)
        t_cands = _pad(t_cands, k)
        if point.router == "taxonomy":
            return t_cands, t_primary, np.ones(n, bool)
        l_cands, l_primary = self._learned_route(batch, point.cost_weight, k)
        cands = np.where(familiar[:, None], t_cands, _pad(l_cands, k))
        return cands, np.where(familiar, t_primary, l_primary), familiar.astype(bool)

    def explain(self, batch: Batch, point: OperatingPoint) -> list[Route]:
        """The routes of a batch as readable objects: candidates, path, taxonomy labels with their confidence,
        suitability and the learned router's predicted scores (what `emafusion route` prints)."""
        cands, primary, taxonomy_path = self.route(batch, point)
        probs, phi, predicted = self._probs(batch), self._phi(batch), self._predicted(batch)
        labels = top_labels(probs, self.taxonomy_)
        conf = confidence(probs)
        names = self.model_names_
        routes = []
        for i in range(len(batch)):
            kept = (phi[i] >= point.tau_c).any()
            familiar = bool(conf[i] >= (0.0 if point.router == "taxonomy" else point.tau_fam) and kept)
            path = ("taxonomy" if kept else "taxonomy-fallback") if taxonomy_path[i] else "learned"
            routes.append(Route(candidates=tuple(names[j] for j in cands[i] if j >= 0), path=path,
                                primary=names[int(primary[i])],
                                info={"labels": labels.iloc[i].to_dict(), "confidence": float(conf[i]),
                                      "familiar": familiar, "phi": dict(zip(names, np.round(phi[i], 4).tolist())),
                                      "predicted": dict(zip(names, np.round(predicted[i], 4).tolist()))}))
        return routes

    def panel(self, names: Sequence[str], rule: str = "mean", extra_judges: Mapping | None = None) -> Panel:
        """The judges an operating point names: verifier (fitted), peer:<model> (agreement with that model's
        answer) and, from `extra_judges` (name -> judge, given per call, e.g. LLM judges on one request's
        client), any other kind."""
        extra = dict(extra_judges or {})
        key = (tuple(names), rule)
        if key in self._panels and not extra:
            return self._panels[key]
        judges = []
        for name in names:
            if name in extra:
                judges.append(extra[name])
            elif name == "verifier":
                judges.append(self.verifier_)
            elif name.startswith("state-verifier") and getattr(self, "state_verifier_", None) is not None:
                peers = [p[len("peer:"):] for p in name.split("+")[1:]]
                judges.append(self.state_verifier_.judge(peers))
            elif name.startswith("peer:"):
                judges.append(PeerAgreementJudge(name[len("peer:"):]))
            else:
                raise ValueError(f"unknown judge {name!r}: expected verifier, peer:<model> or one of {sorted(extra)}")
        panel = Panel(judges, rule=rule)
        if not extra:
            self._panels[key] = panel
        return panel

    # ---- answering ------------------------------------------------------------------------------------------------
    def decide(self, batch: Batch, executor, point: OperatingPoint, record: bool = False,
               judges: Mapping | None = None) -> tuple[Decision, State]:
        """Route every query of the batch and run the cascade through `executor` (replay or live); `judges`:
        judges of this call beyond the fitted ones (name -> judge), e.g. LLM judges on the caller's client."""
        cands, primary, taxonomy_path = self.route(batch, point)
        state = State(batch, self.model_names_, executor, predicted=self._predicted(batch), record=record,
                      embeddings=self._embeddings(batch))
        if not point.cascade:
            decision = run_cascade(state, primary[:, None], None, np.zeros((len(batch), 1)))
        elif point.next_step == "adaptive":
            decision = run_adaptive(state, cands, self.panel(point.panel, point.rule, judges), point.gain_price,
                                    self.unit_cost_)
        else:
            tau_j = dict(point.tau_j)
            types = self._categories(batch, point.categories) if point.by_category else None
            if point.direct or point.k_by:
                cands = chains_by_category(cands, primary, types, set(point.direct), dict(point.k_by))
            tau = thresholds(tau_j, len(batch), cands.shape[1], types)
            decision = run_cascade(state, cands, self.panel(point.panel, point.rule, judges), tau,
                                   select=point.select)
        decision.taxonomy_path = taxonomy_path
        return decision, state

    # ---- calibration ---------------------------------------------------------------------------------------------
    def calibrate(self, calibrate, router: str = "hybrid", cascade: bool = True, budgets=None, n_budgets: int = 25,
                  panel_size: int | None = None, rule: str = "mean",
                  panels: Sequence[tuple[str, ...]] | None = None,
                  by_category: str | None = None) -> list[OperatingPoint]:
        """One sweep over the knobs on a calibrate TrainingSet (its labels grade each setting); the panel is
        chosen by calibrate AIQ (among `panels`, default all), then per budget the knob with the best calibrate
        accuracy within it (by_category: see Variant)."""
        variant = Variant(self, router, cascade, panel_size, rule, executor=calibrate.executor, panels=panels,
                          by_category=by_category)
        mean_cost = calibrate.mean_cost
        c_range = (float(mean_cost.min()), float(mean_cost.max()))
        budgets = default_budgets(*c_range, n_budgets) if budgets is None else np.atleast_1d(budgets)
        s = choose_hyper(variant, calibrate.view,
                         lambda d: grade(d, calibrate.scores, calibrate.costs, calibrate.failed), c_range)
        chosen = calibrate_budgets(s, budgets)
        return [replace(s.knobs[int(i)], budget_usd=float(b)) for b, i in zip(chosen["budget_usd"],
                                                                             chosen["knob_index"])]


class Variant:
    """EMAFusion with a fixed router kind and cascade on/off, in the shape calibration sweeps: structural
    choices (the panel) are `hypers`, the budget dial is the grid of operating points (`knobs`)."""

    def __init__(self, method: EMAFusion, router: str, cascade: bool, panel_size: int | None = None,
                 rule: str = "mean", executor=None, selects: Sequence[str] = ("last",), no_cascade: bool | None = None,
                 panels: Sequence[tuple[str, ...]] | None = None, by_category: str | None = None,
                 next_step: str = "chain"):
        """executor: where answers come from (default: the batch's own, as a replay split view has); selects,
        no_cascade: see EMAFusion.grid (no_cascade None: on for a cascade choosing its panel, so calibrate can
        choose the router alone at any budget; off for a fixed panel, whose numbers are that panel's); selects:
        answer selection 'support' is selectable, not swept by default (calibrate CV: no gain for twice the
        sweep); panels: the panels to choose from (default: method.panels()); by_category: chains per category
        (item 3; taxonomy axes such as 'task_type/complexity', None: off): after the panel is chosen, each frontier
        setting of the calibrate sweep gets a sibling whose categories may take their own tau_j, skip the cascade
        or drop cheap models (see `refined_knobs`)."""
        self.by_category = by_category
        if next_step not in NEXT_STEPS:
            raise ValueError(f"next_step must be one of {NEXT_STEPS}, got {next_step!r}")
        self.next_step = next_step  # 'adaptive': the cascade-routing variant (item 4)
        if no_cascade is None:
            no_cascade = cascade and panel_size is None
        self.selects, self.no_cascade, self._panels = tuple(selects), no_cascade, panels
        if router not in ROUTERS:
            raise ValueError(f"router must be one of {ROUTERS}, got {router!r}")
        if panel_size is not None and not 1 <= panel_size <= 3:
            raise ValueError(f"panel_size must be 1, 2 or 3, got {panel_size}")
        self.method, self.router, self.cascade, self.panel_size, self.rule = method, router, cascade, panel_size, rule
        self.executor = executor
        self._grids: dict = {}

    def hypers(self) -> list:
        if not self.cascade:
            return [()]
        panels = list(self._panels) if self._panels is not None else self.method.panels()
        if self.panel_size is not None:
            fixed = self.method.verifier_panels()
            return [fixed[min(self.panel_size, len(fixed)) - 1]]
        return panels

    def knobs_for(self, batch: Batch, hyper) -> list[OperatingPoint]:
        key = (batch, tuple(hyper))
        if key not in self._grids:
            self._grids[key] = self.method.grid(self.router, self.cascade, tuple(hyper), batch, self.rule,
                                                self.selects, self.no_cascade, self.next_step)
        return self._grids[key]

    def decide(self, batch: Batch, hyper, knob: OperatingPoint) -> Decision:
        return self.method.decide(batch, self.executor or batch.executor, knob)[0]

    def sweep(self, batch: Batch, hyper) -> list[tuple[OperatingPoint, Decision]]:
        return [(knob, self.decide(batch, hyper, knob)) for knob in self.knobs_for(batch, hyper)]

    # ---- chains per category (issue 13 item 3) ----------------------------------------------------------------
    def refine(self, batch: Batch, chosen: Sweep, grade) -> Sweep:
        """The chosen calibrate sweep plus the per-category siblings of its frontier settings (by_category on)."""
        if (not self.by_category or not self.cascade or self.next_step != "chain"
                or getattr(self.method, "taxonomy_router_", None) is None):
            return chosen
        extra = self.refined_knobs(batch, chosen.hyper, chosen.knobs, chosen.outcomes, grade)
        if not extra:
            return chosen
        outcomes = [grade(self.decide(batch, chosen.hyper, k)) for k in extra]
        return Sweep(chosen.hyper, list(chosen.knobs) + extra, list(chosen.outcomes) + outcomes)

    def refined_knobs(self, batch: Batch, hyper, knobs, outcomes, grade, rows: np.ndarray | None = None,
                      min_group: int | None = None, margin: float | None = None) -> list[OperatingPoint]:
        """For each calibrate frontier setting P (a cascade with one tau_j): per category of the batch (predicted
        labels on `by_category`), choose among a few options - P itself, tau_j one grid step lower or higher, the
        router's pick alone (direct), one cheap model fewer - by calibrate accuracy - price x cost (price: the
        frontier's slope at P), moving a category only when it beats P by the guard of choose_per_group (enough
        queries, gain above its standard error). rows: the calibrate queries the choice may read (cross-
        validation); outcomes: the sweep's graded outcomes, one per knob."""
        from . import calibration

        min_group = calibration.MIN_GROUP if min_group is None else min_group
        margin = calibration.GROUP_MARGIN if margin is None else margin
        axes = self.by_category
        n = len(batch)
        sel = np.ones(n, bool) if rows is None else np.asarray(rows, bool)
        cats = np.array(self.method._categories(batch, axes), object)
        acc = np.array([o.accuracy for o in outcomes], float)
        cost = np.array([o.cost for o in outcomes], float)
        mean_a, mean_c = acc[:, sel].mean(1), cost[:, sel].mean(1)
        route = lambda k: (k.router, k.tau_c, k.tau_fam, k.cost_weight)
        alone = {route(k): i for i, k in enumerate(knobs) if not k.cascade}
        plain = [i for i, k in enumerate(knobs) if k.cascade and not k.by_category]
        by_tau: dict = {}
        for i in plain:
            k = knobs[i]
            by_tau.setdefault((route(k), k.k, k.panel, k.rule, k.select), {})[dict(k.tau_j)["*"]] = i
        out = []
        for i, price in frontier_prices(mean_c, mean_a, plain).items():
            p = knobs[i]
            tau = dict(p.tau_j)["*"]
            family = by_tau[(route(p), p.k, p.panel, p.rule, p.select)]
            taus = sorted(family)
            pos = taus.index(tau)
            options = [("tau", t) for t in taus[max(pos - 1, 0): pos + 2] if t != tau]
            opt_acc, opt_cost = [acc[i]], [cost[i]]
            for _, t in options:
                opt_acc.append(acc[family[t]])
                opt_cost.append(cost[family[t]])
            if route(p) in alone:
                options.append(("direct", None))
                opt_acc.append(acc[alone[route(p)]])
                opt_cost.append(cost[alone[route(p)]])
            if p.k > 1:
                fewer = replace(p, categories=axes, k_by=tuple((c, p.k - 1) for c in sorted(set(cats))),
                                budget_usd=None)
                o = grade(self.decide(batch, hyper, fewer))
                options.append(("k", p.k - 1))
                opt_acc.append(o.accuracy)
                opt_cost.append(o.cost)
            moves = choose_per_group(np.array(opt_acc)[:, sel], np.array(opt_cost)[:, sel], cats[sel], price,
                                     min_group, margin)
            if not moves:
                continue
            tau_by = {"*": tau}
            direct, k_by = [], {}
            for c, o in sorted(moves.items()):
                kind, value = options[o - 1]
                if kind == "tau":
                    tau_by[c] = float(value)
                elif kind == "direct":
                    direct.append(c)
                else:
                    k_by[c] = int(value)
            out.append(replace(p, categories=axes, tau_j=tuple(sorted(tau_by.items())), direct=tuple(direct),
                               k_by=tuple(sorted(k_by.items())), budget_usd=None))
        return out


def chains_by_category(cands: np.ndarray, primary: np.ndarray, categories: Sequence[str], direct: set,
                       k_by: Mapping[str, int]) -> np.ndarray:
    """The candidate chains with the per-category overrides: `direct` categories get the router's pick alone,
    `k_by` categories keep the last (dearest) k of their chain (cheapest-first order kept; -1 padding)."""
    out = np.array(cands, copy=True)
    for i, c in enumerate(categories):
        if c in direct:
            out[i] = -1
            out[i, 0] = primary[i]
        elif c in k_by:
            valid = out[i][out[i] >= 0]
            kept = valid[max(len(valid) - int(k_by[c]), 0):]
            out[i] = -1
            out[i, : len(kept)] = kept
    return out


def _pad(cands: np.ndarray, k: int) -> np.ndarray:
    if cands.shape[1] >= k:
        return cands[:, :k]
    return np.hstack([cands, np.full((len(cands), k - cands.shape[1]), -1)])
