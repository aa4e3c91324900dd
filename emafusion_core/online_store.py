"""The self-optimising loop in `emafusion serve` (online.py's SelfOptimiser, shared through the budget ledger's Store).

Each served request's cascade verdicts (the State the answer path records) are turned into Observations by
`SelfOptimiser.assess` (judging the returned answer when the point runs no cascade, exploring on a share of
requests) and queued; once `batch_size` requests are queued, one fold (`SelfOptimiser.learn`, the one update
code) changes the learned state: the suitability table's sums, masses and pseudo-observations and the learned
router's heads (with the fitted heads they are pulled toward), plus the UpdateLog.

Where it lives: one JSON document in the Store the config's budget ledger uses (llm/ledger.py: diskcache beside
the cache, Redis, or memory), under `emafusion:self-optimising:<ledger name>:<fit fingerprint>`, beside the
ledger's `emafusion:budget:<name>:<period>`. Arrays are stored as raw little-endian bytes in base64 with dtype
and shape (persist.encode_arrays): no pickle. The document carries a version counter.

One writer at a time: a fold is computed on this process's copy (under the routing lock), then written by a
compare-and-set inside the Store's atomic `update`: only if the stored version is still the one the fold
started from, which becomes version + 1. If another worker wrote in between, the fold is undone, the newest
version is loaded and the fold is redone on it, so no update is ever lost or applied twice. Any failure (a
fold that raises, a store that cannot be written) restores the state as it was before the fold and drops that
batch (counted in the report, logged): never a half-written state, never a failed request.

Every request first loads the newest version if the stored counter moved (`sync`), so all workers route with
the same learned state; a restarted server loads it at start and routes as before the restart. A document that
cannot be read at start (not JSON, another format, learned on another fit, arrays of the wrong shape) is a
LearnedStateError, one line, and the server does not start: serving would otherwise overwrite what was learned
(`emafusion self-optimising reset --config X` clears it). At run time an unreadable newer version is logged
and skipped (the process keeps routing with the version it has).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .online import Observations, SelfOptimiser, UpdateLog
from .persist import FittedModelError, decode_arrays, digest_arrays, encode_arrays, learned_arrays, set_learned_arrays

log = logging.getLogger(__name__)
FORMAT = "emafusion-self-optimising-v1"
MAX_CAS_ATTEMPTS = 20  # a fold redone this often because other writers kept winning is dropped (logged)


class LearnedStateError(ValueError):
    """The stored learned state cannot be used (corrupt, another format, or learned on another fit)."""


@dataclass(frozen=True)
class LoopSettings:
    """The `self_optimising:` section of the config, as the loop uses it."""

    batch_size: int = 100
    weight: float = 1.0
    cap: float = 1.0
    explore_share: float = 0.05
    seed: int = 0


def state_key(ledger_name: str, fit_signature: dict) -> str:
    """Where a config's learned state lives: beside its ledger, per fit (another fit or pool starts afresh)."""
    fingerprint = hashlib.sha256(json.dumps(fit_signature, sort_keys=True).encode()).hexdigest()[:12]
    return f"emafusion:self-optimising:{ledger_name}:{fingerprint}"


def check_document(doc, fit_signature: dict | None = None) -> dict:
    """A stored document's parts, checked without a method (what a server can tell before any worker starts):
    format, version, fit, log and arrays decodable. Returns {} for no state yet. LearnedStateError otherwise."""
    if doc is None or doc == {}:
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise LearnedStateError(f"format {got!r}, expected {FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise LearnedStateError(f"version: expected a non-negative integer, got {version!r}")
    if fit_signature is not None and doc.get("fit") != fit_signature:
        raise LearnedStateError(f"learned for fit {doc.get('fit')}, not this config's {fit_signature}")
    try:
        updates = UpdateLog.from_dict(doc.get("log") or {})
        arrays = None if doc.get("arrays") is None else decode_arrays(doc["arrays"])
    except (ValueError, TypeError) as exc:
        raise LearnedStateError(str(exc)) from None
    return {"version": version, "log": updates, "arrays": arrays, "baseline": doc.get("baseline")}


def read_document(store, key: str):
    """The stored document (None if none); LearnedStateError if the store holds something that is not JSON."""
    try:
        return store.read(key)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LearnedStateError(f"not valid JSON ({type(exc).__name__}: {' '.join(str(exc).split())})") from None


def reset_document(store, key: str, fit_signature: dict) -> int:
    """Forget what was learned (the operator's decision): the next version is the fitted state again. Returns
    the new version (one more than the stored one, so every worker notices; a document that is not JSON any more
    is replaced unread, by version 1)."""
    def fresh(version: int) -> dict:
        return {"format": FORMAT, "version": version, "fit": fit_signature, "log": UpdateLog().to_dict(),
                "arrays": None, "baseline": None, "updated_at": time.time(), "writer": f"reset pid {os.getpid()}"}

    def clear(doc):
        version = doc.get("version", 0) if isinstance(doc, dict) else 0
        version = version if isinstance(version, int) and not isinstance(version, bool) and version >= 0 else 0
        doc.clear()
        doc.update(fresh(version + 1))
        return version + 1

    try:
        return store.update(key, clear)
    except (ValueError, UnicodeDecodeError, AttributeError):  # not JSON, or not a JSON object
        store.put(key, fresh(1))
        return 1


class SharedLoop:
    """The loop of one serving process over a Store shared with the other workers.

    method: the process's fitted EMAFusion (changed in place: the system routes with it); point: the operating
    point served; lock: the lock under which the system routes (EMAFusionSystem.embed_lock), so a request
    never routes with a half-applied version. Raises LearnedStateError if the stored state is unusable."""

    def __init__(self, method, point, store, key: str, fit_signature: dict, settings: LoopSettings = LoopSettings(),
                 lock: threading.Lock | None = None):
        self.settings = settings
        self.optimiser = SelfOptimiser(method, point, weight=settings.weight, cap=settings.cap,
                                       explore_share=settings.explore_share, seed=settings.seed)
        self.method, self.store, self.key, self.fit = method, store, key, fit_signature
        self.lock = lock or threading.Lock()
        self._fitted = learned_arrays(method)  # version 0 (and what a reset returns to)
        self.baseline = digest_arrays(self._fitted)
        self.version = 0
        self._queue: list[Observations] = []
        self._queue_lock = threading.Lock()
        self._requests = 0
        self.failed_updates = 0
        self.dropped_verdicts = 0
        self.retries = 0
        self.stale = False  # the last sync could not load a newer stored version
        self._warned: set = set()
        with self.lock:
            self._apply(self._checked(read_document(store, key)), strict=True)

    # ---- reading ---------------------------------------------------------------------------------------------
    def _checked(self, doc) -> dict:
        parts = check_document(doc, self.fit)
        baseline = parts.get("baseline")
        if parts and baseline is not None and baseline != self.baseline:
            raise LearnedStateError(f"learned on another fit of this config (fitted state {baseline}, this "
                                    f"process's {self.baseline}): refit or reset it")
        return parts

    def _apply(self, parts: dict, strict: bool = False) -> None:
        """Make this process's method the stored version (the fitted state for an empty or reset one)."""
        if not parts:
            if self.version != 0:
                set_learned_arrays(self.method, self._fitted)
                self.optimiser.log, self.version = UpdateLog(), 0
            return
        arrays = self._fitted if parts["arrays"] is None else parts["arrays"]
        try:
            set_learned_arrays(self.method, arrays)
        except FittedModelError as exc:
            raise LearnedStateError(str(exc)) from None
        self.optimiser.log, self.version = parts["log"], parts["version"]

    def sync(self) -> int:
        """Load the newest stored version if it moved (call under `lock`); returns the version routed with. An
        unreadable newer version is logged once and skipped."""
        self.stale = False
        try:
            doc = read_document(self.store, self.key)
            if (doc or {}).get("version", 0) == self.version:
                return self.version
            self._apply(self._checked(doc))
        except (LearnedStateError, OSError, ConnectionError) as exc:
            self.stale = True
            marker = (type(exc).__name__, str(exc)[:200])
            if marker not in self._warned:
                self._warned.add(marker)
                log.warning("self-optimising: stored state %s not loaded, routing with version %d: %s",
                            self.key, self.version, exc)
        except Exception as exc:  # e.g. a Redis error: never fail the request for it
            self.stale = True
            log.warning("self-optimising: cannot read %s (%s: %s)", self.key, type(exc).__name__, exc)
        return self.version

    # ---- per request -------------------------------------------------------------------------------------------
    def assess(self, batch, decision, state, judges=None) -> Observations | None:
        """What one answered request gives the loop (called by EMAFusionSystem.ask after the cascade, before
        the result is read, so an exploration purchase shows in the request's judge cost). Exploration only
        when every part was answered; nothing here fails the request (None then, logged)."""
        with self._queue_lock:
            self._requests += 1
            n = self._requests
        try:
            rows = np.arange(len(batch))
            answered = bool(state.readable[rows, decision.final].all())
            return self.optimiser.assess(batch, decision, state, explore=answered, judges=judges,
                                         key=(os.getpid(), n, *batch.texts))
        except Exception as exc:  # noqa: BLE001 - learning must never fail a request
            log.warning("self-optimising: could not assess a request (%s: %s)", type(exc).__name__, exc)
            return None

    def record(self, observed: Observations | None) -> dict:
        """Queue one answered request's Observations; fold once `batch_size` are queued. Returns what the
        response's `emafusion.self_optimising` field says."""
        out = {"version": self.version}
        if observed is None:
            return {**out, "queued_verdicts": 0}
        names = self.method.model_names_
        out.update(queued_verdicts=len(observed.models),
                   explored=[{"model": names[j], "answered": ok} for _, j, ok in observed.explored_models])
        with self._queue_lock:
            self._queue.append(observed)
            full = len(self._queue) >= self.settings.batch_size
            batch = self._take() if full else None
        if batch is not None:
            out["update"] = self._fold(batch)
            out["version"] = self.version
        return out

    def _take(self) -> list[Observations]:
        batch, self._queue = self._queue, []
        return batch

    def flush(self) -> dict | None:
        """Fold whatever is queued (a partial batch: at shutdown)."""
        with self._queue_lock:
            batch = self._take()
        return self._fold(batch) if batch else None

    # ---- the one writer ------------------------------------------------------------------------------------------
    def _fold(self, batch: list[Observations]) -> dict:
        """Fold a batch of queued Observations into the newest version and write version + 1 (compare-and-set).
        Returns {"applied": bool, "version", "verdicts"} or the error; never raises."""
        observed = Observations.concat(batch)
        with self.lock:
            for attempt in range(MAX_CAS_ATTEMPTS):
                self.sync()
                base_version, base_log = self.version, UpdateLog.from_dict(self.optimiser.log.to_dict())
                before = learned_arrays(self.method)
                try:
                    self.optimiser.learn(observed)
                    after = learned_arrays(self.method)
                    new = {"format": FORMAT, "version": base_version + 1, "fit": self.fit, "baseline": self.baseline,
                           "log": self.optimiser.log.to_dict(), "arrays": encode_arrays(after),
                           "updated_at": time.time(), "writer": f"pid {os.getpid()}"}

                    def swap(doc):
                        if doc.get("version", 0) != base_version:
                            return False  # another writer won: redo on the newest version
                        doc.clear()
                        doc.update(new)
                        return True

                    written = self.store.update(self.key, swap)
                except Exception as exc:  # noqa: BLE001 - restore, count, log; the request is not failed
                    set_learned_arrays(self.method, before)
                    self.optimiser.log, self.version = base_log, base_version
                    self.failed_updates += 1
                    self.dropped_verdicts += len(observed.models)
                    log.warning("self-optimising: update of %s failed, %d verdicts dropped, state kept at version "
                                "%d (%s: %s)", self.key, len(observed.models), base_version, type(exc).__name__, exc)
                    return {"applied": False, "version": base_version, "error": f"{type(exc).__name__}: {exc}"}
                if written:
                    self.version = base_version + 1
                    return {"applied": True, "version": self.version, "verdicts": len(observed.models)}
                set_learned_arrays(self.method, before)  # undo; the next attempt loads the newest version
                self.optimiser.log = base_log
                self.retries += 1
                if self.stale:  # the newest version cannot be loaded: never write over it
                    break
        self.failed_updates += 1
        self.dropped_verdicts += len(observed.models)
        why = "the stored newer version cannot be loaded" if self.stale else "too many conflicting writers"
        log.warning("self-optimising: update of %s dropped: %s", self.key, why)
        return {"applied": False, "version": self.version, "error": why}

    # ---- the read-only report --------------------------------------------------------------------------------
    def report(self, top: int = 10) -> dict:
        """What GET /v1/emafusion/self-optimising shows: the newest stored version's counts and shifts, and
        this process's queue."""
        with self.lock:
            self.sync()
            shifts = self.optimiser.shifts(top)
            version = self.version
        with self._queue_lock:
            pending = [o for o in self._queue]
        s = self.settings
        return {"enabled": True, "version": version,
                "store": {"backend": self.store.backend, "key": self.key},
                "settings": {"batch_size": s.batch_size, "weight": s.weight, "cap": s.cap,
                             "explore_share": s.explore_share},
                "updates": shifts["updates"], "verdicts_per_model": shifts["verdicts_per_model"],
                "largest_shifts": shifts["largest_shifts"], "axes": shifts["axes"],
                "this_worker": {"pid": os.getpid(), "pending_requests": len(pending),
                                "pending_verdicts": int(sum(len(o.models) for o in pending)),
                                "failed_updates": self.failed_updates, "dropped_verdicts": self.dropped_verdicts,
                                "write_retries": self.retries}}
