"""Query features: text embeddings behind one Encoder interface, cached on disk."""
from .cache import CachedEncoder, EmbeddingStore
from .encoders import Encoder, HashingEncoder, MiniLMEncoder, TfidfEncoder

__all__ = ["CachedEncoder", "EmbeddingStore", "Encoder", "HashingEncoder", "MiniLMEncoder", "TfidfEncoder"]
