"""EMAFusion in the replay harness: taxonomy router, learned router, hybrid switch, each with or without the
judged cascade, fitted on fit, knobs chosen on calibrate, reported on test like every baseline.

What is fitted, once per fit split and shared by the six variants (EMAFusionParts):
- taxonomy labels of fit queries from the documented rules (labelling_rules.yaml); at routing time only the
  fast classifier over the query embedding decides (no benchmark name or metadata is read);
- the fast classifier, the suitability table Phi, the learned router (torch; early stopping on a held-out
  15% of fit, so calibrate stays for knob choice), the learned verifier (shared with the baselines), and the
  peer judges (our default: the most accurate cheap model of each of two other families, chosen on fit).
The slow LLM classifier has no cached replies for these suites: lambda = 0 here (said in the README).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from ..judges.extract import agreement
from ..learned import LearnedRouter
from ..learned.selection import select_top_k
from ..taxonomy import (AXES, FastClassifier, RuleLabeller, SuitabilityTable, TaxonomyRouter, default_rules,
                        default_taxonomy, labels_for)
from .baselines.base import Policy
from .baselines.cascades import shared_judge
from .cascade_replay import PanelInputs, cascade_decision
from .context import FitData, SplitView
from .replay import Decision

VARIANTS = ("taxonomy", "learned", "hybrid")
# Knob grids (our defaults; every value is chosen on calibrate, never on test).
LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8)
HYBRID_LAMBDAS = (0.0, 0.05, 0.2, 0.8)
TAU_FAM = (0.5, 0.8, 0.95)
TAU_J = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
K = 3  # candidates per query (paper default)
VALIDATION_SHARE = 0.15


class _PrecomputedEmbeddings:
    """Stands in for the encoder inside the learned router: in replay the harness has embedded every query."""

    encoder_id = "precomputed"

    def __init__(self, dim: int):
        self.dim = dim

    def encode(self, texts):
        raise RuntimeError("replay routers work on precomputed embeddings")


@dataclass
class EMAFusionParts:
    taxonomy: TaxonomyRouter  # holds the fast classifier and the suitability table
    learned: LearnedRouter
    verifier: object  # AnswerScorer
    peers: list[int]
    unit_cost: np.ndarray  # fit-split mean USD per model


def fit_labels(view: SplitView) -> pd.DataFrame:
    """Taxonomy labels of fit queries: the suite's own label columns where given, else the documented rules."""
    frame = pd.DataFrame({"benchmark": [q.benchmark for q in view.queries],
                          "category": [q.category for q in view.queries],
                          "answer_format": [q.answer_format for q in view.queries]})
    for axis in AXES:
        values = [q.metadata.get(axis) for q in view.queries]
        if any(v is not None for v in values):
            frame[axis] = values
    return labels_for(frame, RuleLabeller(default_taxonomy(), default_rules()))


def choose_peers(model_names: list[str], families: dict[str, str], accuracy: np.ndarray, unit_cost: np.ndarray,
                 n_peers: int = 2) -> list[int]:
    """Our default: among models no dearer than the median, the most accurate (on fit) of each family, best
    two families. Cheap peers keep the judges' cost a fraction of the strong model's."""
    cheap = unit_cost <= np.median(unit_cost)
    best_of_family: dict[str, int] = {}
    for j in np.flatnonzero(cheap):
        fam = families.get(model_names[j], model_names[j])
        if fam not in best_of_family or accuracy[j] > accuracy[best_of_family[fam]]:
            best_of_family[fam] = int(j)
    ranked = sorted(best_of_family.values(), key=lambda j: (-accuracy[j], unit_cost[j]))
    return ranked[:n_peers]


def fit_parts(data: FitData, families: dict[str, str], prior_strength: float = 10.0,
              encoder=None) -> EMAFusionParts:
    """Fit every part on the fit split's embeddings. With `encoder` (the one that made the embeddings), the
    parts are also deployable: TaxonomyRouter and LearnedRouter can route new query texts."""
    view, x = data.view, data.view.embeddings
    if x is None:
        raise ValueError("EMAFusion needs query embeddings: give the harness an encoder")
    taxonomy = default_taxonomy()
    labels = fit_labels(view)
    labelled = labels.notna().all(axis=1).to_numpy()
    if not labelled.any():
        raise ValueError("no fit query has taxonomy labels: bring label columns or run the slow classifier")
    fast = FastClassifier(taxonomy, encoder=encoder, seed=data.seed).fit_embeddings(x[labelled], labels[labelled])
    suitability = SuitabilityTable(taxonomy, data.model_names, prior_strength).fit(
        taxonomy.one_hot(labels[labelled]), data.scores[labelled])
    # learned router: early stopping on a fixed, seeded 15% of fit
    rng = view.rng("emafusion-validation")
    val = np.zeros(len(x), bool)
    val[rng.permutation(len(x))[: max(1, int(VALIDATION_SHARE * len(x)))]] = True
    learned = LearnedRouter(encoder or _PrecomputedEmbeddings(x.shape[1]), data.model_names, data.mean_cost, k=K,
                            seed=data.seed)
    learned.fit_embeddings(x[~val], data.scores[~val], x[val], data.scores[val])
    peers = choose_peers(data.model_names, families, data.accuracy, data.mean_cost)
    router = TaxonomyRouter(taxonomy, fast, suitability, data.mean_cost, max_candidates=K)
    return EMAFusionParts(router, learned, shared_judge(data), peers, data.mean_cost)


def panel_inputs(view: SplitView, parts: EMAFusionParts) -> PanelInputs:
    """What the judges would see on a split: verifier probabilities and peer agreements of every recorded
    answer (texts only), plus which answers exist and what buying one costs."""
    def compute():
        m = len(view.model_names)
        answers = [[view.executor.run(q, model) for model in view.model_names] for q in view.queries]
        has = np.array([[a.ok for a in row] for row in answers], bool)
        costs = np.array([[a.cost_usd for a in row] for row in answers], float)
        agree = {}
        for p in parts.peers:
            mat = np.full((len(view), m), np.nan)
            for i, (q, row) in enumerate(zip(view.queries, answers)):
                for j in range(m):
                    if j != p and has[i, j] and has[i, p]:
                        value = agreement(q.answer_format, row[j].response, row[p].response)
                        mat[i, j] = np.nan if value is None else value
            agree[p] = mat
        verifier = parts.verifier.prob_matrix(view)
        verifier = np.where(has, verifier, np.nan)
        return PanelInputs(verifier, agree, has, costs)

    return view.cached(("emafusion-panel", id(parts)), compute)


class EMAFusionPolicy(Policy):
    """One variant: `router` in VARIANTS, with or without the judged cascade."""

    def __init__(self, router: str, cascade: bool, families: dict[str, str], n_tau_c: int = 8,
                 panel_size: int | None = None, rule: str = "mean", encoder=None):
        """panel_size: fix the panel to the verifier plus (panel_size - 1) peers instead of choosing it on
        calibrate; rule: how the panel's verdicts are combined (mean, majority, unanimity); encoder: the
        harness's encoder, which makes the fitted routers deployable on new texts (optional in replay)."""
        if router not in VARIANTS:
            raise ValueError(f"router must be one of {VARIANTS}, got {router!r}")
        if rule not in ("mean", "majority", "unanimity"):
            raise ValueError(f"rule must be mean, majority or unanimity in replay, got {rule!r}")
        if panel_size is not None and not 1 <= panel_size <= 3:
            raise ValueError(f"panel_size must be 1, 2 or 3, got {panel_size}")
        self.router, self.cascade, self.families, self.n_tau_c = router, cascade, families, n_tau_c
        self.panel_size, self.rule, self.encoder = panel_size, rule, encoder
        self.name = f"emafusion:{router}" + ("+cascade" if cascade else "")
        if panel_size is not None:
            self.name += f"[{panel_size} judge{'s' if panel_size > 1 else ''}, {rule}]"
        self.knob_name = "+".join({"taxonomy": ["tau_c"], "learned": ["lambda"],
                                   "hybrid": ["tau_fam", "tau_c", "lambda"]}[router] + (["tau_j"] if cascade else []))
        self.parts: EMAFusionParts | None = None
        self.tau_c_grid: list[float] = []

    # ---- fitting ---------------------------------------------------------------------------------------
    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.parts = data.view.cached(("emafusion-parts", tuple(sorted(self.families.items())), id(self.encoder)),
                                      lambda: fit_parts(data, self.families, encoder=self.encoder))
        phi = self._phi(calibrate)  # calibrate texts only: sets the grid, reads no label
        qs = np.quantile(phi, np.linspace(0.05, 0.95, self.n_tau_c))
        self.tau_c_grid = sorted(set(np.round(qs, 4).tolist()))

    def hypers(self) -> list:
        if not self.cascade:
            return [None]
        peers = self.parts.peers
        panels = [("verifier", *peers[:n]) for n in range(len(peers) + 1)]
        if self.panel_size is not None:
            return [panels[min(self.panel_size, len(panels)) - 1]]
        return panels

    def describe(self, hyper) -> str:
        if hyper is None:
            return ""
        names = {j: f"peer:{self.parts.learned.model_names[j]}" for j in self.parts.peers}
        return " + ".join(names.get(h, h) for h in hyper)

    def knobs(self, hyper) -> list:
        grids = {"taxonomy": [self.tau_c_grid], "learned": [LAMBDAS],
                 "hybrid": [TAU_FAM, self.tau_c_grid, HYBRID_LAMBDAS]}[self.router]
        if self.cascade:
            grids = grids + [TAU_J]
        return [tuple(k) for k in product(*grids)]

    # ---- per-split quantities (memoised on the view) --------------------------------------------------------
    def _probs(self, view: SplitView):
        return view.cached(("emafusion-probs", id(self.parts)),
                           lambda: self.parts.taxonomy.fast.predict_proba_embeddings(view.embeddings))

    def _phi(self, view: SplitView) -> np.ndarray:
        suitability = self.parts.taxonomy.suitability
        return view.cached(("emafusion-phi", id(self.parts)), lambda: suitability.phi(self._probs(view)))

    def _predicted(self, view: SplitView) -> np.ndarray:
        return view.cached(("emafusion-pred", id(self.parts)),
                           lambda: self.parts.learned.predict_from_embeddings(view.embeddings))

    # ---- routing ------------------------------------------------------------------------------------------
    def _taxonomy_route(self, view: SplitView, tau_c: float, tau_fam: float = 0.0):
        """(candidates (n, K) cheapest first with -1 padding, primary (n,), familiar (n,)) from the same
        TaxonomyRouter a live deployment uses; computed once per (view, tau_c, tau_fam)."""
        def compute():
            d = self.parts.taxonomy.decide(self._probs(view), tau_c=tau_c, tau_fam=tau_fam)
            return self.parts.taxonomy.chains(d), d.primary, d.familiar

        return view.cached(("emafusion-taxonomy-route", id(self.parts), float(tau_c), float(tau_fam)), compute)

    def _learned_route(self, view: SplitView, lam: float):
        def compute():
            pred = self._predicted(view)
            return (select_top_k(pred, self.parts.unit_cost, K, lam),
                    select_top_k(pred, self.parts.unit_cost, 1, lam)[:, 0])

        return view.cached(("emafusion-learned-route", id(self.parts), float(lam)), compute)

    def route(self, view: SplitView, knob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidates, primary, path) with path 1 = taxonomy, 0 = learned."""
        knob = tuple(knob)
        if self.router == "taxonomy":
            cands, primary, _ = self._taxonomy_route(view, knob[0])
            return cands, primary, np.ones(len(view), int)
        if self.router == "learned":
            cands, primary = self._learned_route(view, knob[0])
            return cands, primary, np.zeros(len(view), int)
        tau_fam, tau_c, lam = knob[:3]
        t_cands, t_primary, familiar = self._taxonomy_route(view, tau_c, tau_fam)
        l_cands, l_primary = self._learned_route(view, lam)
        cands = np.where(familiar[:, None], t_cands, _pad(l_cands, K))
        primary = np.where(familiar, t_primary, l_primary)
        return cands, primary, familiar.astype(int)

    def decide(self, view: SplitView, hyper, knob) -> Decision:
        cands, primary, path = self.route(view, knob)
        if not self.cascade:
            return Decision(final=primary, taxonomy_path=path.astype(bool))
        decision = cascade_decision(cands, panel_inputs(view, self.parts), list(hyper), tau_j=tuple(knob)[-1],
                                    rule=self.rule)
        decision.taxonomy_path = path.astype(bool)
        return decision


def _pad(cands: np.ndarray, k: int) -> np.ndarray:
    if cands.shape[1] >= k:
        return cands[:, :k]
    return np.hstack([cands, np.full((len(cands), k - cands.shape[1]), -1)])


def emafusion_policies(families: dict[str, str]) -> list[Policy]:
    """The six variants of issue 5's comparison; 'emafusion:hybrid+cascade' is EMAFusion itself."""
    return [EMAFusionPolicy(router, cascade, families) for cascade in (False, True) for router in VARIANTS]
