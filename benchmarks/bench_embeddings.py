"""Embedding time for every query of the shipped suites: cold (encoder runs) and warm (disk cache).

Prints texts/s cold and the warm load time. Uses a fresh temporary cache so "cold" really is cold.
"""
from __future__ import annotations

import tempfile
import time

from emafusion_core.data import BUILTIN_SUITES, load_builtin
from emafusion_core.features import CachedEncoder, EmbeddingStore, MiniLMEncoder


def main() -> None:
    texts = []
    for name in BUILTIN_SUITES:
        texts += load_builtin(name).queries["question"].tolist()
    print(f"{len(texts)} query texts ({len(set(texts))} distinct) from {', '.join(BUILTIN_SUITES)}")
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddingStore(tmp)
        cold = CachedEncoder(MiniLMEncoder(), store)
        t0 = time.perf_counter()
        cold.encode(texts)
        t_cold = time.perf_counter() - t0
        warm = CachedEncoder(MiniLMEncoder(), store)  # a new process would see the same: nothing in memory
        t0 = time.perf_counter()
        vectors = warm.encode(texts)
        t_warm = time.perf_counter() - t0
    print(f"cold: {t_cold:.1f} s ({len(set(texts)) / t_cold:.0f} texts/s, model load included)")
    print(f"warm: {t_warm * 1000:.0f} ms for {vectors.shape[0]} x {vectors.shape[1]} (encoder never loaded: "
          f"{warm.encoder._model is None})")


if __name__ == "__main__":
    main()
