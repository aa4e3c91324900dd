"""Where a Budget keeps its totals: one ledger that every process (and replica) sharing a cap can see.

A Budget's admission rule (spent + reserved + this call <= cap) only holds across processes if spent AND the
reservations in flight live in one place updated atomically. A Ledger does that over a Store, which offers a
single primitive: an atomic read-modify-write of one small JSON document. Backends:

- MemoryStore: this process only (the default of a bare Budget: tests, a library run).
- DiskStore: a diskcache.Cache (sqlite, one transaction per update): every process on one machine, e.g.
  `emafusion serve --workers N`, and what was spent survives a restart.
- RedisStore: a redis.Redis client (WATCH/MULTI): replicas on several machines share one cap.

The document of one budget: spent, overshoot, expired (reservations charged at their lease's end) and the
holds in flight {id: [usd, expires_at]}. A process that dies holding a reservation cannot settle it, so each
hold has a lease (lease_s): once it is over, the next update charges the hold its full reservation (the
worst case, so the cap still holds) and drops it; a later settlement of that hold is a no-op.

Periods: the key carries the period (UTC day, month, or none), so a new day or month starts from zero spent;
otherwise the totals reset only by `reset()` (`emafusion budget reset`).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

PERIODS = ("none", "day", "month")


@dataclass(frozen=True)
class Totals:
    spent: float = 0.0
    reserved: float = 0.0
    overshoot: float = 0.0
    expired: float = 0.0  # reservations charged in full because their lease ran out (a crashed holder)
    holds: int = 0


class Store(Protocol):
    """An atomic read-modify-write of one JSON document per key."""

    backend: str

    def update(self, key: str, fn: Callable[[dict], object]) -> object:
        """Run fn on the document (a fresh {} if none) and store what it left, atomically; return fn's result."""

    def read(self, key: str) -> dict | None: ...

    def put(self, key: str, doc: dict) -> None:
        """Replace the document without reading it (an operator's reset of one that is not JSON any more)."""


class MemoryStore:
    """One process's memory (no persistence)."""

    backend = "memory"

    def __init__(self):
        self._docs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def update(self, key, fn):
        with self._lock:
            doc = self._docs.setdefault(key, {})
            return fn(doc)

    def read(self, key):
        with self._lock:
            doc = self._docs.get(key)
            return None if doc is None else json.loads(json.dumps(doc))

    def put(self, key, doc):
        with self._lock:
            self._docs[key] = json.loads(json.dumps(doc))


class DiskStore:
    """A diskcache.Cache (the caller opens and closes it): sqlite transactions make updates atomic across the
    processes of one machine. Documents are JSON text, like the response cache's records."""

    backend = "disk"

    def __init__(self, cache):
        self.cache = cache
        self._lock = threading.Lock()  # threads of this process queue here, not on sqlite's busy timeout

    def update(self, key, fn):
        with self._lock, self.cache.transact(retry=True):
            text = self.cache.get(key, retry=True)
            doc = json.loads(text) if text else {}
            out = fn(doc)
            self.cache.set(key, json.dumps(doc), retry=True)
            return out

    def read(self, key):
        text = self.cache.get(key, retry=True)
        return json.loads(text) if text else None

    def put(self, key, doc):
        with self._lock:
            self.cache.set(key, json.dumps(doc), retry=True)


class RedisStore:
    """A redis.Redis client (the caller's): optimistic WATCH/MULTI transactions, retried on a conflict."""

    backend = "redis"

    def __init__(self, client):
        self.client = client

    def update(self, key, fn):
        from redis.exceptions import WatchError

        while True:
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    text = pipe.get(key)
                    doc = json.loads(text) if text else {}
                    out = fn(doc)
                    pipe.multi()
                    pipe.set(key, json.dumps(doc))
                    pipe.execute()
                    return out
                except WatchError:
                    continue

    def read(self, key):
        text = self.client.get(key)
        return json.loads(text) if text else None

    def put(self, key, doc):
        self.client.set(key, json.dumps(doc))


def period_label(period: str, now: float) -> str:
    if period == "none":
        return "all"
    stamp = time.gmtime(now)
    return time.strftime("%Y-%m-%d" if period == "day" else "%Y-%m", stamp)


class Ledger:
    """The totals of one budget (`name`) in a Store, per period, with leased reservations.

    lease_s: how long a reservation may stay unsettled before it is charged in full (None: forever, right
    for a MemoryStore, whose holder cannot die without the ledger). It must exceed the longest a call can
    take (its attempts' timeouts and back-offs), or a slow call is charged its worst case early (safe)."""

    def __init__(self, store: Store, *, name: str = "run", period: str = "none", lease_s: float | None = None,
                 clock: Callable[[], float] = time.time):
        if period not in PERIODS:
            raise ValueError(f"a budget period must be one of {', '.join(PERIODS)}, not {period!r}")
        if lease_s is not None and not lease_s > 0:
            raise ValueError(f"a reservation lease must be a positive number of seconds, not {lease_s!r}")
        self.store, self.name, self.period, self.lease_s, self.clock = store, name, period, lease_s, clock

    @property
    def backend(self) -> str:
        return self.store.backend

    def key(self, now: float | None = None) -> str:
        return f"emafusion:budget:{self.name}:{period_label(self.period, self.clock() if now is None else now)}"

    @staticmethod
    def _expire(doc: dict, now: float) -> None:
        holds = doc.setdefault("holds", {})
        for hid, (usd, expires) in list(holds.items()):
            if expires is not None and expires <= now:
                del holds[hid]
                doc["spent"] = doc.get("spent", 0.0) + usd
                doc["expired"] = doc.get("expired", 0.0) + usd

    @staticmethod
    def _totals(doc: dict | None) -> Totals:
        doc = doc or {}
        holds = doc.get("holds", {})
        return Totals(doc.get("spent", 0.0), sum(usd for usd, _ in holds.values()), doc.get("overshoot", 0.0),
                      doc.get("expired", 0.0), len(holds))

    def reserve(self, usd: float, cap: float | None) -> tuple[str | None, str, Totals]:
        """Hold usd if spent + reserved + usd fits the cap (None: always). Returns (hold id or None if refused,
        the key it lives under, the totals it was judged against)."""
        now = self.clock()
        key = self.key(now)
        expires = None if self.lease_s is None else now + self.lease_s

        def admit(doc):
            self._expire(doc, now)
            totals = self._totals(doc)
            if cap is not None and totals.spent + totals.reserved + usd > cap + 1e-12:
                return None, totals
            hid = uuid.uuid4().hex
            doc["holds"][hid] = [usd, expires]
            return hid, totals

        hid, totals = self.store.update(key, admit)
        return hid, key, totals

    def settle(self, hold_id: str, key: str, charged: float, overshoot: float = 0.0) -> bool:
        """Drop the hold and charge `charged` (and count `overshoot`); False if the hold was no longer there
        (settled already, or charged in full when its lease ran out)."""
        now = self.clock()

        def close(doc):
            self._expire(doc, now)
            if doc["holds"].pop(hold_id, None) is None:
                return False
            doc["spent"] = doc.get("spent", 0.0) + charged
            doc["overshoot"] = doc.get("overshoot", 0.0) + overshoot
            return True

        return self.store.update(key, close)

    def totals(self) -> Totals:
        """The current period's totals, counting holds whose lease ran out as charged."""
        now = self.clock()
        doc = self.store.read(self.key(now)) or {}
        self._expire(doc, now)  # on a copy: a read never writes
        return self._totals(doc)

    def reset(self) -> Totals:
        """Zero what the current period spent (the operator's decision); holds in flight stay held and settle
        into the fresh totals. Returns the totals before."""
        now = self.clock()

        def clear(doc):
            self._expire(doc, now)
            before = self._totals(doc)
            doc.update(spent=0.0, overshoot=0.0, expired=0.0)
            return before

        return self.store.update(self.key(now), clear)
