"""Write data/embeddings/: the MiniLM embeddings of the shipped suites' queries, one shard per suite.

Derived data (the encoder is deterministic on CPU), shipped so that `make reproduce` on a fresh machine does
not spend minutes on 2 cores re-encoding every query. One file per suite (routerbench and routellm share the
first one, `shard-shipped.npz`), so adding a suite adds a file and never rewrites another suite's. A shard
that already holds exactly its suite's texts is left untouched; `--suite NAME` builds only that shard.
Reuses data/cache/embeddings where it already has vectors, and prints the measured encoding speed.
"""
from __future__ import annotations

import argparse
import time

from emafusion_core.data import default_data_dir, load_builtin
from emafusion_core.features import CachedEncoder, EmbeddingStore, MiniLMEncoder
from emafusion_core.features.cache import text_key

SHARDS = {"shipped": ("routerbench", "routellm"), "zeroeval": ("zeroeval",), "mmlupro": ("mmlupro",)}


def shard_texts(name: str) -> list[str]:
    return sorted({t for suite in SHARDS[name] for t in load_builtin(suite).queries["question"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", action="append", choices=sorted(SHARDS), help="only this shard (repeatable)")
    args = parser.parse_args()
    base = default_data_dir()
    shipped = EmbeddingStore(base / "embeddings")
    encoder = CachedEncoder(MiniLMEncoder(), EmbeddingStore(base / "cache" / "embeddings"))
    for name in args.suite or list(SHARDS):
        texts = shard_texts(name)
        keys = [text_key(t) for t in texts]
        have = shipped.read_shard(encoder.encoder_id, name)
        if set(have) == set(keys):
            print(f"shard-{name}: {len(texts)} texts, up to date")
            continue
        before, t0 = encoder.misses, time.perf_counter()
        vectors = encoder.encode(texts)
        seconds, fresh = time.perf_counter() - t0, encoder.misses - before
        path = shipped.write_shard(encoder.encoder_id, name, keys, vectors)
        speed = f", {fresh / seconds:.0f} texts/s" if fresh else ""
        print(f"shard-{name}: {len(texts)} texts -> {path} ({fresh} newly encoded in {seconds:.0f} s{speed})")


if __name__ == "__main__":
    main()
