"""The ledger a config names (`ledger:`, `budget_period:`), opened: where the config's budget keeps its spent
total, so that every process serving one config (workers, restarts; replicas with Redis) shares one cap.

The store objects are built here from the config, once; llm/ledger.py takes them as objects."""
from __future__ import annotations

from .config import Config, ConfigError
from .llm.ledger import DiskStore, Ledger, MemoryStore, RedisStore


def open_store(config: Config):
    spec = config.ledger
    if spec.backend == "memory":
        return MemoryStore()
    if spec.backend == "disk":
        import diskcache

        return DiskStore(diskcache.Cache(spec.disk_path(config.cache_dir)))
    try:
        import redis
    except ImportError:
        raise ConfigError("ledger.backend: redis needs the redis package (pip install 'emafusion[redis]')") from None
    client = redis.Redis.from_url(spec.url, socket_timeout=10, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"ledger.url: cannot reach Redis at {spec.url} ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())})") from None
    return RedisStore(client)


def open_ledger(config: Config) -> Ledger:
    """The config's ledger. A memory ledger never expires holds (its holder cannot die without it)."""
    spec = config.ledger
    store = open_store(config)
    return Ledger(store, name=spec.name, period=config.budget_period,
                  lease_s=None if spec.backend == "memory" else spec.lease_s)


def describe(config: Config) -> str:
    spec = config.ledger
    where = {"disk": spec.disk_path(config.cache_dir), "redis": spec.url, "memory": "this process"}[spec.backend]
    return f"{spec.backend} ledger {spec.name!r} at {where} (period: {config.budget_period})"
