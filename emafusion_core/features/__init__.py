"""Query features: text embeddings behind one Encoder interface, cached on disk."""
from .cache import CachedEncoder, EmbeddingStore
from .encoders import Encoder, HashingEncoder, MiniLMEncoder, TfidfEncoder

__all__ = ["CachedEncoder", "EmbeddingStore", "Encoder", "HashingEncoder", "MiniLMEncoder", "TfidfEncoder",
           "default_encoder", "make_encoder"]


def default_encoder(data_dir=None) -> CachedEncoder:
    """all-MiniLM-L6-v2 behind the disk cache: data/cache/embeddings (written) over data/embeddings (shipped,
    read only: the shipped suites' queries, so a fresh clone does not re-encode them)."""
    from ..data import default_data_dir

    base = default_data_dir() if data_dir is None else data_dir
    return CachedEncoder(MiniLMEncoder(), EmbeddingStore(base / "cache" / "embeddings", read_only=[base / "embeddings"]))


def make_encoder(name: str, data_dir=None):
    """An encoder by name: "minilm" (the shipped, cached MiniLM) or "hashing" (fast, for smoke runs)."""
    if name == "minilm":
        return default_encoder(data_dir)
    if name == "hashing":
        return HashingEncoder()
    raise ValueError(f"unknown encoder {name!r}: expected minilm or hashing")
