"""Write data/embeddings/: the MiniLM embeddings of every shipped suite's queries, one shard per encoder.

They are derived data (the encoder is deterministic on CPU), shipped so that `make reproduce` on a fresh
machine does not spend ~10 minutes on 2 cores re-encoding 18k queries. Run after changing data/ or the
encoder; reuses data/cache/embeddings where it already has vectors.
"""
from __future__ import annotations

import shutil

import numpy as np

from emafusion_core.data import BUILTIN_SUITES, default_data_dir, load_builtin
from emafusion_core.features import CachedEncoder, EmbeddingStore, MiniLMEncoder
from emafusion_core.features.cache import text_key


def main() -> None:
    base = default_data_dir()
    texts = sorted({t for name in BUILTIN_SUITES for t in load_builtin(name).queries["question"]})
    encoder = CachedEncoder(MiniLMEncoder(), EmbeddingStore(base / "cache" / "embeddings"))
    vectors = encoder.encode(texts)
    out = EmbeddingStore(base / "embeddings")
    folder = out._folder(encoder.encoder_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keys = [text_key(t) for t in texts]
    np.savez_compressed(folder / "shard-shipped.npz", keys=np.array(keys), vectors=vectors.astype(np.float32))
    print(f"{len(texts)} texts -> {folder} ({encoder.misses} newly encoded)")


if __name__ == "__main__":
    main()
