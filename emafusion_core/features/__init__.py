"""Query features: text embeddings behind one Encoder interface, cached on disk."""
from .cache import CachedEncoder, EmbeddingStore
from .encoders import Encoder, HashingEncoder, MiniLMEncoder, TfidfEncoder

__all__ = ["CachedEncoder", "EmbeddingStore", "Encoder", "HashingEncoder", "MiniLMEncoder", "TfidfEncoder",
           "default_encoder"]


def default_encoder(data_dir=None) -> CachedEncoder:
    """all-MiniLM-L6-v2 behind the disk cache: data/cache/embeddings (written) over data/embeddings (shipped,
    read only: the shipped suites' queries, so a fresh clone does not re-encode them)."""
    from ..data import default_data_dir

    base = default_data_dir() if data_dir is None else data_dir
    return CachedEncoder(MiniLMEncoder(), EmbeddingStore(base / "cache" / "embeddings", read_only=[base / "embeddings"]))
