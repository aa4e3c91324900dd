"""EMAFusion in the replay harness: the method (method.EMAFusion) as a Policy, in six variants (taxonomy /
learned / hybrid router, each with or without the judged cascade), fitted on fit, knobs chosen on calibrate,
reported on test like every baseline. Nothing here decides anything: it adapts the method to the harness.
"""
from __future__ import annotations

from .. import fit_cache
from ..method import ROUTERS, EMAFusion, OperatingPoint, Variant
from .baselines.base import Policy, PolicyUnavailable
from .context import FitData, SplitView
from .replay import Decision

VARIANTS = ROUTERS


def fitted_method(data: FitData, families: dict[str, str] | None = None, state_verifier: bool = True) -> EMAFusion:
    """One fitted EMAFusion per fit split, shared by every variant (memoised on the fit view). A suite whose fit
    queries carry no taxonomy labels still gets its learned parts (the taxonomy variants report why not).

    state_verifier=False: the caller never judges (the routers alone), so any fit serves: the full one when it is
    at hand (this view's memo, or the fit cache), else a fit without the state verifier, whose cross-fitting is
    most of a fit's time (notebook 03's out-of-distribution fits). The routers are the same either way."""
    families = dict(families or data.families)
    key = ("emafusion", tuple(sorted(families.items())))

    def compute(full: bool):
        data.families = families
        method, cache = EMAFusion(require_taxonomy=False, state_verifier=full), fit_cache.from_environment()
        return cache.fitted(method, data) if cache is not None else method.fit(data)

    if state_verifier or key in data.view.memo:
        return data.view.cached(key, lambda: compute(True))
    cache = fit_cache.from_environment()
    if cache is not None:
        data.families = families
        full = cache.load(EMAFusion(require_taxonomy=False), data)
        if full is not None:
            data.view.memo[key] = full
            return full
    return data.view.cached(key + ("routers alone",), lambda: compute(False))


class EMAFusionPolicy(Policy):
    """One variant: `router` in VARIANTS, with or without the judged cascade."""

    def __init__(self, router: str, cascade: bool, families: dict[str, str] | None = None,
                 panel_size: int | None = None, rule: str = "mean", by_category: str | None = None,
                 next_step: str = "chain", state_verifier: bool = True):
        """panel_size: fix the panel to the verifier plus (panel_size - 1) peers instead of choosing it on
        calibrate; rule: how the panel's verdicts are combined (mean, majority, unanimity); by_category: chains
        per category (method.Variant; off by default: calibrate cross-validation showed no gain); next_step
        'adaptive': the cascade-routing variant (choose the next model or stop by expected gain per cost);
        state_verifier=False: a router-alone variant that may be served by a fit without the state verifier
        (fitted_method), for experiments that fit many splits and never judge."""
        if router not in VARIANTS:
            raise ValueError(f"router must be one of {VARIANTS}, got {router!r}")
        if rule not in ("mean", "majority", "unanimity"):
            raise ValueError(f"rule must be mean, majority or unanimity in replay, got {rule!r}")
        if panel_size is not None and not 1 <= panel_size <= 3:
            raise ValueError(f"panel_size must be 1, 2 or 3, got {panel_size}")
        if cascade and not state_verifier:
            raise ValueError("a cascade variant judges: it needs the state verifier among its panels")
        self.router, self.cascade, self.families, self.state_verifier = router, cascade, families, state_verifier
        self.panel_size, self.rule, self.by_category = panel_size, rule, by_category
        self.name = f"emafusion:{router}" + ("+cascade" if cascade else "")
        if by_category:
            self.name += f"[chains by {by_category}]"
        self.next_step = next_step
        if next_step != "chain":
            self.name = self.name.replace("+cascade", f"+{next_step}")
        if panel_size is not None:
            self.name += f"[{panel_size} judge{'s' if panel_size > 1 else ''}, {rule}]"
        self.knob_name = "+".join({"taxonomy": ["tau_c"], "learned": ["lambda"],
                                   "hybrid": ["tau_fam", "tau_c", "lambda"]}[router]
                                  + ([("gain_price" if next_step == "adaptive" else "tau_j")] if cascade else []))
        self.method: EMAFusion | None = None
        self.variant: Variant | None = None

    def fit(self, data: FitData, calibrate: SplitView) -> None:
        self.method = fitted_method(data, self.families, self.state_verifier)
        reason = getattr(self.method, "taxonomy_unavailable_", None)
        if reason and self.router != "learned":
            raise PolicyUnavailable(f"it needs the taxonomy router, and {reason}")
        self.variant = Variant(self.method, self.router, self.cascade, self.panel_size, self.rule,
                               by_category=self.by_category, next_step=self.next_step)
        self._calibrate = calibrate

    def hypers(self) -> list:
        return self.variant.hypers()

    def knobs(self, hyper) -> list[OperatingPoint]:
        return self.variant.knobs_for(self._calibrate, hyper)

    def refine(self, view: SplitView, chosen, grade):
        return self.variant.refine(view, chosen, grade)

    def describe(self, hyper) -> str:
        return " + ".join(hyper) if hyper else ""

    def decide(self, view: SplitView, hyper, knob: OperatingPoint) -> Decision:
        return self.variant.decide(view, hyper, knob)


def emafusion_policies(families: dict[str, str] | None = None) -> list[Policy]:
    """The six variants of the comparison; 'emafusion:hybrid+cascade' is EMAFusion itself."""
    return [EMAFusionPolicy(router, cascade, families) for cascade in (False, True) for router in VARIANTS]
