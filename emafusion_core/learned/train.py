"""Seeded, deterministic training of a ScoreNet on observed per-model scores, early-stopped on calibrate.

Determinism: weight init, dropout and batch order all draw from a seed, inside a forked torch RNG so the
caller's global RNG is untouched; the thread count and deterministic-algorithm flag are fixed for the run
and restored afterwards (CPU float sums can differ with the number of threads).
Missing scores (NaN) are masked out of the loss, so a model not run on a query does not count as wrong.
"""
from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .model import ScoreNet

LOSSES = ("bce", "mse")


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs. The paper gives none of these: every value is our default."""

    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    loss: str = "bce"  # "bce": BCE-with-logits, predictions through a sigmoid; "mse": raw linear outputs
    lr: float = 1e-3
    weight_decay: float = 1e-4  # AdamW
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 10  # epochs without a calibrate-loss improvement of at least min_delta before stopping
    min_delta: float = 1e-4
    seed: int = 0
    num_threads: int = 1  # fixed so that results do not depend on the machine's core count

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("batch_size", "max_epochs", "patience", "num_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0 or self.weight_decay < 0 or self.min_delta < 0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, min_delta >= 0; got {self.lr}, "
                             f"{self.weight_decay}, {self.min_delta}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class TrainReport:
    epochs_run: int
    best_epoch: int  # 1-based epoch whose weights were kept
    best_cal_loss: float
    stopped_early: bool
    seconds: float
    fit_losses: list[float] = field(default_factory=list)
    cal_losses: list[float] = field(default_factory=list)


@contextmanager
def deterministic_torch(seed: int, num_threads: int):
    """Seed torch and pin its threads and algorithms for the block; restore the caller's settings after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            torch.set_num_threads(num_threads)
            torch.use_deterministic_algorithms(True)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


def check_targets(y: np.ndarray, n_rows: int, n_models: int, loss: str, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.shape != (n_rows, n_models):
        raise ValueError(f"{what} must have shape ({n_rows}, {n_models}), got {y.shape}")
    observed = y[~np.isnan(y)]
    if observed.size == 0:
        raise ValueError(f"{what} has no observed (non-NaN) score")
    if not np.all(np.isfinite(observed)):
        raise ValueError(f"{what} contains infinite values")
    if loss == "bce" and (observed.min() < 0 or observed.max() > 1):
        raise ValueError(f"{what} must lie in [0, 1] for the bce loss, got range "
                         f"[{observed.min()}, {observed.max()}]")
    return y


def _masked_loss(kind: str, out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if kind == "bce":
        per = nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none")
    else:
        per = (out - y) ** 2
    return (per * mask).sum() / mask.sum().clamp(min=1.0)


def _tensors(y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    mask = ~np.isnan(y)
    return torch.from_numpy(np.where(mask, y, 0.0).astype(np.float32)), torch.from_numpy(mask.astype(np.float32))


def train_score_net(x_fit: np.ndarray, y_fit: np.ndarray, x_cal: np.ndarray, y_cal: np.ndarray,
                    config: TrainConfig = TrainConfig()) -> tuple[ScoreNet, TrainReport]:
    """Fit a ScoreNet on (x_fit, y_fit); keep the weights of the epoch with the lowest calibrate loss."""
    x_fit, x_cal = np.asarray(x_fit, np.float32), np.asarray(x_cal, np.float32)
    if x_fit.ndim != 2 or x_cal.ndim != 2 or x_fit.shape[1] != x_cal.shape[1]:
        raise ValueError(f"feature matrices must be 2-d with equal widths, got {x_fit.shape} and {x_cal.shape}")
    if len(x_fit) == 0 or len(x_cal) == 0:
        raise ValueError("need at least one fit and one calibrate query (early stopping uses calibrate)")
    if not (np.all(np.isfinite(x_fit)) and np.all(np.isfinite(x_cal))):
        raise ValueError("features contain NaN or infinite values")
    n_models = np.shape(y_fit)[1] if np.ndim(y_fit) == 2 else -1
    y_fit = check_targets(y_fit, len(x_fit), n_models, config.loss, "fit scores")
    y_cal = check_targets(y_cal, len(x_cal), n_models, config.loss, "calibrate scores")

    started = time.perf_counter()
    with deterministic_torch(config.seed, config.num_threads):
        net = ScoreNet(x_fit.shape[1], n_models, config.hidden, config.dropout)
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        order_rng = torch.Generator().manual_seed(config.seed)
        xf, xc = torch.from_numpy(x_fit), torch.from_numpy(x_cal)
        (yf, mf), (yc, mc) = _tensors(y_fit), _tensors(y_cal)

        best_loss, best_epoch, best_state, waited = float("inf"), 0, copy.deepcopy(net.state_dict()), 0
        fit_losses, cal_losses = [], []
        for epoch in range(1, config.max_epochs + 1):
            net.train()
            total = 0.0
            for batch in torch.randperm(len(xf), generator=order_rng).split(config.batch_size):
                optimiser.zero_grad()
                loss = _masked_loss(config.loss, net(xf[batch]), yf[batch], mf[batch])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            fit_losses.append(total / len(xf))
            net.eval()
            with torch.no_grad():
                cal_losses.append(float(_masked_loss(config.loss, net(xc), yc, mc)))
            if cal_losses[-1] < best_loss - config.min_delta:
                best_loss, best_epoch, waited = cal_losses[-1], epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                waited += 1
                if waited >= config.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
    report = TrainReport(epochs_run=len(cal_losses), best_epoch=best_epoch, best_cal_loss=best_loss,
                         stopped_early=len(cal_losses) < config.max_epochs,
                         seconds=time.perf_counter() - started, fit_losses=fit_losses, cal_losses=cal_losses)
    return net, report
