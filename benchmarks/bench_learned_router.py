"""Learned router on routerbench (seed-0 split): training time, per-query routing latency, fit/calibrate metrics.

Embeddings come from the MiniLM disk cache (computed once if missing, ~1-2 minutes). Routing latency
excludes embedding: each query's vector is routed on its own via route_embedded. Only the fit and calibrate
splits are touched; test is reserved for the reported results.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from emafusion_core.data import load_builtin, make_splits, split_ids
from emafusion_core.features import default_encoder
from emafusion_core.learned import fit_on_suite



def split_metrics(router, embeddings: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> dict:
    """What routing to the top-1 / top-k predicted models would have scored on this split."""
    pred = router.predict_from_embeddings(embeddings)
    rows = np.arange(len(scores))
    top1 = router.select(pred, k=1)[:, 0]
    topk = router.select(pred)
    return {
        "top1 accuracy": scores[rows, top1].mean(),
        "top1 USD/query": costs[rows, top1].mean(),
        f"any of top-{topk.shape[1]} right": np.take_along_axis(scores, topk, axis=1).max(axis=1).mean(),
        "oracle accuracy": scores.max(axis=1).mean(),
        "brier": np.mean((pred - scores) ** 2),
        "mean predicted": pred.mean(axis=0),
        "mean actual": scores.mean(axis=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (1: tiny matmuls gain nothing from more)")
    parser.add_argument("--latency-queries", type=int, default=500)
    args = parser.parse_args()

    suite = load_builtin("routerbench")
    splits = make_splits(suite.queries, suite.name, args.seed)
    encoder = default_encoder()
    questions = suite.queries.set_index("query_id")["question"]
    t0 = time.perf_counter()
    vectors = {part: encoder.encode(questions.loc[split_ids(splits, part)].tolist()) for part in ("fit", "calibrate")}
    print(f"embeddings: {time.perf_counter() - t0:.1f} s ({encoder.hits} cached, {encoder.misses} computed)")

    t0 = time.perf_counter()
    router = fit_on_suite(suite, splits, encoder, seed=args.seed, num_threads=args.threads)
    wall = time.perf_counter() - t0
    rep = router.report
    print(f"training on {len(vectors['fit'])} fit queries x {len(suite.model_names)} models: {wall:.2f} s wall "
          f"({rep.seconds:.2f} s in the loop, {args.threads} threads), {rep.epochs_run} epochs, best epoch "
          f"{rep.best_epoch}, calibrate {router.config.loss} loss {rep.best_cal_loss:.4f}")

    cal = vectors["calibrate"]
    n = min(args.latency_queries, len(cal))
    router.route_embedded(cal[:1])  # warm-up
    torch.set_num_threads(1)  # routing one query is a single small matmul chain; threads only add overhead
    times, cpu = np.empty(n), np.empty(n)
    for i in range(n):
        t, c = time.perf_counter(), time.thread_time()
        router.route_embedded(cal[i:i + 1])
        times[i], cpu[i] = time.perf_counter() - t, time.thread_time() - c
    # CPU time excludes waiting for a core, which dominates the wall-clock tail on a loaded machine.
    for label, x in (("wall", times), ("cpu", cpu)):
        print(f"routing one query (embedding given), {n} queries, {label}: p50 {np.percentile(x, 50) * 1e3:.3f} ms, "
              f"p99 {np.percentile(x, 99) * 1e3:.3f} ms, max {x.max() * 1e3:.3f} ms")

    names = router.model_names
    for part in ("fit", "calibrate"):
        ids = split_ids(splits, part)
        m = split_metrics(router, vectors[part], suite.scores.loc[ids].to_numpy(),
                          suite.costs.loc[ids].to_numpy())
        best = int(np.argmax(suite.scores.loc[split_ids(splits, "fit")].mean().to_numpy()))
        print(f"\n{part} ({len(ids)} queries): " + ", ".join(
            f"{k} {v:.4f}" for k, v in m.items() if np.ndim(v) == 0)
            + f", best single (by fit) {names[best]} {m['mean actual'][best]:.4f}")
        for name, p, a in zip(names, m["mean predicted"], m["mean actual"]):
            print(f"  {name:36s} predicted {p:.3f}  actual {a:.3f}")

    ids = split_ids(splits, "calibrate")
    scores, costs = suite.scores.loc[ids].to_numpy(), suite.costs.loc[ids].to_numpy()
    pred = router.predict_from_embeddings(cal)
    print("\ncalibrate, top-1 under cost_weight lambda (score - lambda * cost / max cost):")
    for lam in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0):
        pick = router.select(pred, k=1, cost_weight=lam)[:, 0]
        rows = np.arange(len(pick))
        print(f"  lambda {lam:4.2f}: accuracy {scores[rows, pick].mean():.4f}, "
              f"USD/query {costs[rows, pick].mean() * 1e3:.3f}e-3")


if __name__ == "__main__":
    main()
