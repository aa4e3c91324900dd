"""EMAFusion in the replay harness: the method (method.EMAFusion) as a Policy, in six variants (taxonomy /
learned / hybrid router, each with or without the judged cascade), fitted on fit, knobs chosen on calibrate,
reported on test like every baseline. Nothing here decides anything: it adapts the method to the harness.
"""
from __future__ import annotations

import numpy as np

from ..execution import stable_rng
from ..learned import LearnedRouter
from ..method import ROUTERS, EMAFusion, OperatingPoint, Variant, choose_peers, fit_verifier
from ..taxonomy import default_taxonomy
from .baselines.base import Policy, PolicyUnavailable
from .context import FitData, SplitView
from .replay import Decision

VARIANTS = ROUTERS


def fitted_method(data: FitData, families: dict[str, str] | None = None) -> EMAFusion:
    """One fitted EMAFusion per fit split, shared by every variant (memoised on the fit view)."""
    families = dict(families or data.families)

    def compute():
        data.families = families
        try:
            method = EMAFusion().fit(data)
        except ValueError as exc:
            if "no fit query has taxonomy labels" not in str(exc):
                raise
            return _fit_without_taxonomy(EMAFusion(), data, str(exc))
        method.taxonomy_unavailable_ = None
        return method

    return data.view.cached(("emafusion", tuple(sorted(families.items()))), compute)


def _fit_without_taxonomy(method: EMAFusion, training, reason: str) -> EMAFusion:
    """EMAFusion.fit without its taxonomy router, for a suite whose fit queries carry no taxonomy labels: the
    learned router, verifier and peers are fitted exactly as EMAFusion.fit fits them (same seeded validation
    share), so the learned variants run; the taxonomy and hybrid variants are then unavailable (`reason`)."""
    x = training.view.embeddings
    if x is None:
        raise ValueError("EMAFusion needs query embeddings: give the training set embeddings or an encoder")
    method.model_names_ = list(training.model_names)
    method.families_ = {m: training.families.get(m, m) for m in method.model_names_}
    method.taxonomy_ = default_taxonomy()
    scores = np.asarray(training.scores, float)
    method.unit_cost_ = training.mean_cost
    method.taxonomy_router_ = None
    rng = stable_rng(training.suite, training.seed, training.split, "emafusion-validation")
    val = np.zeros(len(x), bool)
    val[rng.permutation(len(x))[: max(1, int(method.validation_share * len(x)))]] = True
    method.learned_ = LearnedRouter(method.encoder, method.model_names_, method.unit_cost_, k=method.k,
                                    seed=training.seed)
    method.learned_.fit_embeddings(x[~val], scores[~val], x[val], scores[val])
    method.verifier_ = fit_verifier(training)
    method.peers_ = choose_peers(method.model_names_, method.families_, training.accuracy, method.unit_cost_,
                                 method.n_peers)
    method._panels = {}
    method.taxonomy_unavailable_ = reason
    return method


class EMAFusionPolicy(Policy):
    """One variant: `router` in VARIANTS, with or without the judged cascade."""

    def __init__(self, router: str, cascade: bool, families: dict[str, str] | None = None,
                 panel_size: int | None = None, rule: str = "mean"):
        """panel_size: fix the panel to the verifier plus (panel_size - 1) peers instead of choosing it on
        calibrate; rule: how the panel's verdicts are combined (mean, majority, unanimity)."""
        if router not in VARIANTS:
            raise ValueError(f"router must be one of {VARIANTS}, got {router!r}")
        if rule not in ("mean", "majority", "unanimity"):
            raise ValueError(f"rule must be mean, majority or unanimity in replay, got {rule!r}")
        if panel_size is not None and not 1 <= panel_size <= 3:
            raise ValueError(f"panel_size must be 1, 2 or 3, got {panel_size}")
        self.router, self.cascade, self.families = router, cascade, families
        self.panel_size, self.rule = panel_size, rule
        self.name = f"emafusion:{router}" + ("+cascade" if cascade else "")
        if panel_size is not None:
            self.name += f"[{panel_size} judge{'s' if panel_size > 1 else ''}, {rule}]"
        self.knob_name = "+".join({"taxonomy": ["tau_c"], "learned": ["lambda"],
                                   "hybrid": ["tau_fam", "tau_c", "lambda"]}[router] + (["tau_j"] if cascade else []))
        self.method: EMAFusion | None = None
        self.variant: Variant | None = None

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.method = fitted_method(data, self.families)
        reason = getattr(self.method, "taxonomy_unavailable_", None)
        if reason and self.router != "learned":
            raise PolicyUnavailable(f"it needs the taxonomy router, and {reason}")
        self.variant = Variant(self.method, self.router, self.cascade, self.panel_size, self.rule)
        self._calibrate = calibrate

    def hypers(self) -> list:
        return self.variant.hypers()

    def knobs(self, hyper) -> list[OperatingPoint]:
        return self.variant.knobs_for(self._calibrate, hyper)

    def describe(self, hyper) -> str:
        return " + ".join(hyper) if hyper else ""

    def decide(self, view: SplitView, hyper, knob: OperatingPoint) -> Decision:
        return self.variant.decide(view, hyper, knob)


def emafusion_policies(families: dict[str, str] | None = None) -> list[Policy]:
    """The six variants of the comparison; 'emafusion:hybrid+cascade' is EMAFusion itself."""
    return [EMAFusionPolicy(router, cascade, families) for cascade in (False, True) for router in VARIANTS]
