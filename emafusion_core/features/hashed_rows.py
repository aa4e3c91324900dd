"""Hashed bag-of-words rows, remembered per text, once per process.

The learned verifier hashes the same texts over and over: every seed, label share, operating point and
stream batch of an experiment judges the same test answers again, and every refit hashes the same fit
answers (hashing was a fifth of notebook 07's time). Hashing is pure: a text's row depends on the text and
the vectorizer's settings alone, never on the other texts of the batch (each row is normalised by itself),
so a remembered row is the row a fresh transform would give, bit for bit. One memo per vectorizer setting,
shared by every verifier of the process, bounded (past `max_rows` rows it starts afresh), thread-safe (serve
judges requests side by side). It holds no label and no score: only what the text alone determines."""
from __future__ import annotations

import threading
from typing import Iterable

import numpy as np
import scipy.sparse as sp

MAX_ROWS = 400_000  # about 0.5 GB for the longest answers we ship (MMLU-Pro chains of thought)


class HashedRows:
    """`transform(texts)` equals `vectorizer.transform(texts)`; each distinct text is hashed once."""

    def __init__(self, vectorizer, max_rows: int = MAX_ROWS):
        self.vectorizer, self.max_rows = vectorizer, int(max_rows)
        self._index: dict[str, tuple[int, int]] = {}  # text -> (block, row in block)
        self._blocks: list[sp.csr_matrix] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        texts = list(texts)
        if not texts:
            return sp.csr_matrix((0, self.vectorizer.n_features), dtype=self.vectorizer.dtype)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._index))
            if missing and len(self._index) + len(missing) > self.max_rows:
                self._index, self._blocks = {}, []
                missing = list(dict.fromkeys(texts))
            if missing:
                self._blocks.append(sp.csr_matrix(self.vectorizer.transform(missing)))
                block = len(self._blocks) - 1
                self._index.update((text, (block, row)) for row, text in enumerate(missing))
            where = np.array([self._index[t] for t in texts], dtype=np.int64).reshape(-1, 2)
            blocks = list(self._blocks)
        parts, order = [], []
        for block in np.unique(where[:, 0]):
            sel = np.flatnonzero(where[:, 0] == block)
            parts.append(blocks[block][where[sel, 1]])
            order.append(sel)
        stacked = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
        position = np.empty(len(texts), dtype=np.int64)
        position[np.concatenate(order)] = np.arange(len(texts))
        return stacked[position]


_shared: dict[tuple, HashedRows] = {}
_shared_lock = threading.Lock()


def shared_rows(vectorizer) -> HashedRows:
    """The process's memo for vectorizers with these settings (equal settings hash texts alike)."""
    key = tuple(sorted((name, repr(value)) for name, value in vectorizer.get_params().items()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = HashedRows(vectorizer)
        return _shared[key]
