"""Judges study (issue 13): the state-aware verifier and the cascade options, on fit and calibrate only.

    PYTHONPATH=. python benchmarks/judges_study.py [--suites routerbench zeroeval mmlupro] [--seed 0] [--ablation]
        [--options LABEL ...]

Never reads a test split: per suite and seed it fits EMAFusion on fit and measures on calibrate only.
- Verifier AUC per benchmark, old (hashed-words verifier) vs new (state verifier), on the answers a cheapest-first
  cascade judges: the learned router's top-3 chain (lambda 0.05) on calibrate, steps 1 and 2, each judged with the
  answers of the earlier steps bought.
- AIQ of hybrid+cascade and accuracy at <= 50% of the best single model's cost, per set of options, by 2-fold
  cross-validation inside calibrate (choose the panel and the per-budget knob on one half, measure on the other,
  both ways, averaged), so the numbers are not the in-sample maxima calibration picks; accuracy also at <= 25%.
- Chains per category (Variant(by_category=...)): the per-category choices are made on the choosing half only;
  "no guard" drops the shrinkage (any category of 2+ queries may move on any gain).
- Adaptive next step (Variant(next_step="adaptive")): cascade routing, gain_price swept instead of tau_j.
- --options picks options by label, e.g. --options "new default" adaptive.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from emafusion_core import calibration  # noqa: E402
from emafusion_core.calibration import default_budgets, select_by_budget  # noqa: E402
from emafusion_core.cascade import State  # noqa: E402
from emafusion_core.data import load_builtin  # noqa: E402
from emafusion_core.evaluation.harness import Harness  # noqa: E402
from emafusion_core.features import make_encoder  # noqa: E402
from emafusion_core.frontier import aiq  # noqa: E402
from emafusion_core.method import EMAFusion, OperatingPoint, Variant, fit_state_verifier  # noqa: E402
from emafusion_core.results import grade  # noqa: E402


def judged_pairs(method, cal, judge_of):
    """(confidence, right, benchmark) of steps 1-2 of the learned top-3 chain on calibrate."""
    cands, _, _ = method.route(cal.view, OperatingPoint("learned", cost_weight=0.05, k=3, cascade=False, panel=()))
    state = State(cal.view, method.model_names_, cal.executor, predicted=method._predicted(cal.view))
    rows = np.arange(len(cal.view))
    judge = judge_of(method)
    out = []
    for step in range(2):
        for j in np.unique(cands[:, step]):
            r = rows[cands[:, step] == j]
            state.buy(r, int(j))
        c = judge.judge_rows(state, rows, cands[:, step])
        out.append((c, cal.scores[rows, cands[:, step]] >= 0.5, np.array([q.benchmark for q in cal.view.queries])))
    conf, right, bench = (np.concatenate(x) for x in zip(*out))
    ok = ~np.isnan(conf)
    return conf[ok], right[ok], bench[ok]


def auc_by_benchmark(conf, right, bench) -> dict:
    out = {}
    for b in ["*"] + sorted(set(bench)):
        sel = np.ones(len(bench), bool) if b == "*" else bench == b
        out[b] = roc_auc_score(right[sel], conf[sel]) if len(set(right[sel])) == 2 else np.nan
    return out


def cv_numbers(method, cal, variant, n_budgets=12, seed=0, shares=(0.25, 0.5)):
    """2-fold CV inside calibrate: (AIQ, per share in `shares` (accuracy, cost share, best single accuracy) at <=
    that share of the best single model's cost)."""
    outcomes = {}
    for hyper in variant.hypers():
        outcomes[hyper] = [(k, grade(variant.decide(cal.view, hyper, k), cal.scores, cal.costs, cal.failed))
                           for k in variant.knobs_for(cal.view, hyper)]
    n = len(cal.view)
    half = np.random.default_rng([seed, 77]).permutation(n) % 2 == 0
    aiqs, accs = [], []
    for a in (half, ~half):
        b = ~a
        single_cost, single_acc = cal.costs[a].mean(0), cal.scores[a].mean(0)
        c_range = (float(single_cost.min()), float(single_cost.max()))
        budgets = default_budgets(*c_range, n_budgets)
        best, best_aiq = None, -np.inf
        for hyper, pairs in outcomes.items():
            c = np.array([o.cost[a].mean() for _, o in pairs])
            q = np.array([o.accuracy[a].mean() for _, o in pairs])
            v = aiq(c, q, *c_range)
            if v > best_aiq:
                best, best_aiq = hyper, v
        pairs = outcomes[best]
        if variant.by_category:  # chains per category, chosen on half a only
            grade_cal = lambda d: grade(d, cal.scores, cal.costs, cal.failed)
            extra = variant.refined_knobs(cal.view, best, [k for k, _ in pairs], [o for _, o in pairs], grade_cal,
                                          rows=a)
            pairs = pairs + [(k, grade_cal(variant.decide(cal.view, best, k))) for k in extra]
        c_a = np.array([o.cost[a].mean() for _, o in pairs])
        q_a = np.array([o.accuracy[a].mean() for _, o in pairs])
        idx, _ = select_by_budget(c_a, q_a, budgets)
        c_b = np.array([pairs[i][1].cost[b].mean() for i in idx])
        q_b = np.array([pairs[i][1].accuracy[b].mean() for i in idx])
        cb_range = (float(cal.costs[b].mean(0).min()), float(cal.costs[b].mean(0).max()))
        aiqs.append(aiq(c_b, q_b, *cb_range))
        strong = int(np.argmax(single_acc))
        picked, _ = select_by_budget(c_a, q_a, [share * single_cost[strong] for share in shares])
        accs.append([(pairs[i][1].accuracy[b].mean(), pairs[i][1].cost[b].mean() / cal.costs[b, strong].mean(),
                      cal.scores[b, strong].mean()) for i in picked])
    acc = np.mean(accs, axis=0)  # (shares, 3)
    return float(np.mean(aiqs)), acc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suites", nargs="+", default=["routerbench", "zeroeval", "mmlupro"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", nargs="*", help="only the options whose label contains one of these")
    parser.add_argument("--ablation", action="store_true", help="refit the state verifier without each signal")
    args = parser.parse_args(argv)
    encoder = make_encoder("minilm")
    with threadpool_limits(1):
        for name in args.suites:
            t0 = time.perf_counter()
            suite = load_builtin(name)
            h = Harness(suite, encoder, seeds=[args.seed], policies=lambda s, sc: [])
            views = h.views(args.seed)  # fit and calibrate are used; the test view is never touched
            fit, cal = h.fit_data(views["fit"]), h.fit_data(views["calibrate"])
            method = EMAFusion(state_verifier=True).fit(fit)
            print(f"\n== {name} (seed {args.seed}; fit {len(fit.view)}, calibrate {len(cal.view)}; "
                  f"fit {time.perf_counter() - t0:.1f} s)")
            old = auc_by_benchmark(*judged_pairs(method, cal, lambda m: m.verifier_))
            new = auc_by_benchmark(*judged_pairs(method, cal, lambda m: m.state_verifier_.judge()))
            print("verifier AUC on calibrate (cascade steps 1-2):")
            for b in old:
                print(f"  {b:<28} old {old[b]:.3f}   state-verifier {new[b]:.3f}")
            if args.ablation:
                base = method.state_verifier_
                for drop in ("query", "answer", "predicted", "agreement"):
                    method.state_verifier_ = fit_state_verifier(fit, fit.view.embeddings, None, method.unit_cost_,
                                                                method.k, method.validation_share, method.n_folds,
                                                                drop=(drop,))
                    abl = auc_by_benchmark(*judged_pairs(method, cal, lambda m: m.state_verifier_.judge()))
                    print(f"  without {drop:<10}: " + "  ".join(f"{b} {v:.3f}" for b, v in abl.items()))
                method.state_verifier_ = base
            old_panels = method.verifier_panels()
            options = {
                "hybrid (no cascade)": dict(cascade=False),
                "hybrid+cascade, old panels": dict(panels=old_panels, no_cascade=False),
                "  + no-cascade points": dict(panels=old_panels, no_cascade=True),
                "  + state verifier (new default)": dict(no_cascade=True),
                "  + chains by task type": dict(no_cascade=True, by_category="task_type"),
                "  + chains by task type x complexity": dict(no_cascade=True, by_category="task_type/complexity"),
                "  + chains by type x complexity, no guard": dict(no_cascade=True, by_category="task_type/complexity",
                                                                  guard=(2, 0.0)),
                "  + state verifier, fusion": dict(no_cascade=True, selects=("last", "support")),
                "adaptive next step (cascade routing)": dict(no_cascade=True, next_step="adaptive"),
                "state verifier only, fusion": dict(no_cascade=True, selects=("last", "support"),
                                                    panels=[p for p in method.panels() if p[0].startswith("state")]),
            }
            print("2-fold CV inside calibrate: AIQ | accuracy at <= 50% of the best single model's cost "
                  "(cost share, best single model's accuracy)")
            for label, kw in options.items():
                if args.options and not any(o in label for o in args.options):
                    continue
                cascade = kw.pop("cascade", True)
                guard = kw.pop("guard", (calibration.MIN_GROUP, calibration.GROUP_MARGIN))
                variant = Variant(method, "hybrid", cascade, executor=cal.executor, **kw)
                t1 = time.perf_counter()
                saved = calibration.MIN_GROUP, calibration.GROUP_MARGIN
                calibration.MIN_GROUP, calibration.GROUP_MARGIN = guard
                try:
                    a, accs = cv_numbers(method, cal, variant, seed=args.seed)
                finally:
                    calibration.MIN_GROUP, calibration.GROUP_MARGIN = saved
                at = "  ".join(f"<={s:.0%}: acc {acc:.4f} at {share:.0%}" for s, (acc, share, _) in zip((0.25, 0.5), accs))
                print(f"  {label:<34} AIQ {a:.4f} | {at} (best single {accs[0][2]:.4f})"
                      f"  [{time.perf_counter() - t1:.1f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
