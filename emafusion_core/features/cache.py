"""On-disk embedding cache keyed by (encoder id, text hash).

Layout: <root>/<encoder id>/shard-*.npz, each shard holding text hashes and vectors. Reading every
shard of an encoder into one index takes milliseconds for tens of thousands of texts, much faster
than one key-value lookup per text. New vectors go into a new shard written atomically, so a run
that is killed half-way never leaves a corrupt cache.

The shipped embeddings (data/embeddings) are named shards, one per suite (`shard-<suite>.npz`; the first
two suites share `shard-shipped.npz`), written by `write_shard`: adding a suite adds a file and never
rewrites another suite's.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .encoders import Encoder


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingStore:
    """Shards under `root` (read and written) and under each of `read_only` roots (read: e.g. the embeddings
    shipped in data/embeddings, so a fresh clone does not spend minutes re-encoding the shipped suites)."""

    def __init__(self, root: str | Path, read_only: Sequence[str | Path] = ()):
        self.root = Path(root)
        self.read_only = [Path(r) for r in read_only]

    def _folder(self, encoder_id: str, root: Path | None = None) -> Path:
        return (root or self.root) / re.sub(r"[^A-Za-z0-9._@-]+", "_", encoder_id)

    def load(self, encoder_id: str) -> dict[str, np.ndarray]:
        index: dict[str, np.ndarray] = {}
        for root in [*self.read_only, self.root]:
            folder = self._folder(encoder_id, root)
            for shard in sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []:
                with np.load(shard, allow_pickle=False) as data:
                    index.update(zip(map(str, data["keys"]), data["vectors"]))
        return index

    def save(self, encoder_id: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        if len(keys) == 0:
            return
        folder = self._folder(encoder_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, keys=np.array(keys), vectors=np.asarray(vectors, np.float32))
        os.replace(tmp, folder / f"shard-{time.time_ns()}-{os.getpid()}.npz")


    def shard_path(self, encoder_id: str, name: str) -> Path:
        return self._folder(encoder_id) / f"shard-{name}.npz"

    def read_shard(self, encoder_id: str, name: str) -> dict[str, np.ndarray]:
        path = self.shard_path(encoder_id, name)
        if not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(map(str, data["keys"]), data["vectors"]))

    def write_shard(self, encoder_id: str, name: str, keys: Sequence[str], vectors: np.ndarray) -> Path:
        """One named, compressed shard (keys sorted, so the same texts give the same file), written atomically."""
        order = np.argsort(np.asarray(keys))
        folder = self._folder(encoder_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, keys=np.asarray(keys)[order],
                                vectors=np.asarray(vectors, np.float32)[order])
        path = self.shard_path(encoder_id, name)
        os.chmod(tmp, 0o644)  # a shipped file, readable by everyone (mkstemp makes it private)
        os.replace(tmp, path)
        return path


class CachedEncoder:
    """Wraps an Encoder: texts seen before (by this encoder id) come from disk, the rest are encoded once."""

    def __init__(self, encoder: Encoder, store: EmbeddingStore):
        self.encoder, self.store = encoder, store
        self.encoder_id, self.dim = encoder.encoder_id, encoder.dim
        self._index: dict[str, np.ndarray] | None = None
        self.hits = self.misses = 0
        self.progress, self.progress_chunk = True, 256  # a tqdm bar while encoding texts not in the cache

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._index is None:
            self._index = self.store.load(self.encoder_id)
        keys = [text_key(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._index}.items())
        if todo:
            new_keys, new_texts = zip(*todo)
            vectors = self._encode_with_progress(list(new_texts))
            self.store.save(self.encoder_id, list(new_keys), vectors)
            self._index.update(zip(new_keys, vectors))
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        out = np.empty((len(keys), self.encoder.dim), np.float32)
        for i, key in enumerate(keys):
            out[i] = self._index[key]
        return out

    def _encode_with_progress(self, texts: list[str]) -> np.ndarray:
        """Encode texts not in the cache in chunks under a tqdm bar (texts/s shown), longest texts first so
        each chunk holds texts of similar length (padding wastes no work); the result is in the given order."""
        from tqdm.auto import tqdm

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.encoder.dim), np.float32)
        chunk = max(1, min(self.progress_chunk, len(texts)))
        with tqdm(total=len(texts), desc=f"embedding with {self.encoder_id}", unit="text", unit_scale=False,
                  mininterval=1.0, disable=not self.progress or len(texts) < self.progress_chunk) as bar:
            for start in range(0, len(texts), chunk):
                idx = order[start:start + chunk]
                out[idx] = self.encoder.encode([texts[i] for i in idx])
                bar.update(len(idx))
        return out
