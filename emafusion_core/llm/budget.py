"""A hard USD cap per run that holds under concurrency, and budgets chained to others (a cap per request).

Each call reserves its worst case before it is sent (a guaranteed upper bound on the prompt's tokens plus
max_tokens, at the model's rates: see LLMClient.input_bound) and settles to the provider's reported cost when
it returns. Admission checks spent + reserved, so calls in flight can never jointly overshoot the cap. A
settlement never charges more than its reservation (`bounded` holds): a provider that reports more than the
bound allows (a dishonest or buggy usage report) is charged the reservation, and the excess is counted in
`overshoot_usd` (and logged by the gateway) instead, so `spent_usd <= cap_usd` holds whatever a provider
reports. The totals live in a Ledger (llm/ledger.py): this process's memory by default, or a store shared by
processes and replicas (disk, Redis) whose atomic updates make admission safe across all of them.

A refusal while other calls hold reservations that would leave room once settled is `transient` (retry
later: the server answers 429 rate_limit_error with Retry-After); a refusal of a call that does not fit even
with nothing in flight is not (the cap is spent: insufficient_quota).

A refusal is a BudgetExceeded whose `scope` names the budget that refused (Budget(scope=...)), so a caller
can tell a request's own cap from the server's.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from .errors import BudgetExceeded
from .ledger import Ledger, MemoryStore, Totals


@dataclass
class Hold:
    usd: float
    settled: bool = False
    bounded: bool = True  # usd is a guaranteed bound: settling charges at most usd (the rest is overshoot)
    id: str = ""  # the ledger's id of the reservation, and the key (period) it lives under
    key: str = ""


@dataclass
class ChainedHold(Hold):
    """A reservation in a ChainedBudget: its own hold plus the one it took in each parent, in order."""

    parents: tuple[Hold, ...] = ()


class Budget:
    """A USD cap (None: no cap, spending is only counted). `scope` labels its refusals (BudgetExceeded.scope).

    ledger: where the totals live (llm/ledger.py). None: this process's memory. A Ledger over a DiskStore or
    RedisStore makes the cap one for every process that opens the same ledger, and keeps what was spent
    across restarts."""

    def __init__(self, cap_usd: float | None = None, *, scope: str = "run", ledger: Ledger | None = None):
        if cap_usd is not None and not cap_usd >= 0:  # also refuses NaN
            raise ValueError(f"a budget cap must be a non-negative number, not {cap_usd!r}")
        self.cap_usd = cap_usd
        self.scope = scope
        self.ledger = ledger if ledger is not None else Ledger(MemoryStore(), name=scope)
        self._lock = threading.Lock()

    @property
    def capped(self) -> bool:
        """Whether a reservation can be refused: the gateway prices a call's worst case only then."""
        return self.cap_usd is not None

    def totals(self) -> Totals:
        """spent, reserved, overshoot (and expired leases) in one read of the ledger."""
        return self.ledger.totals()

    @property
    def spent_usd(self) -> float:
        return self.ledger.totals().spent

    @property
    def reserved_usd(self) -> float:
        return self.ledger.totals().reserved

    @property
    def overshoot_usd(self) -> float:
        """Reported cost beyond the reservations of bounded holds: never charged to spent_usd, counted here."""
        return self.ledger.totals().overshoot

    @property
    def remaining_usd(self) -> float | None:
        if self.cap_usd is None:
            return None
        t = self.ledger.totals()
        return self.cap_usd - t.spent - t.reserved

    def reserve(self, usd: float, *, model: str = "", key: str = "", bounded: bool = True) -> Hold:
        if not usd >= 0 or usd == float("inf"):
            raise ValueError(f"a reservation must be a finite non-negative number, not {usd!r}")
        hold_id, where, t = self.ledger.reserve(usd, self.cap_usd)
        if hold_id is None:
            transient = t.reserved > 0 and t.spent + usd <= self.cap_usd + 1e-12
            raise BudgetExceeded(
                f"{self.scope} budget refused a call to {model!r} (key {key}): it may cost up to ${usd:.6f}, "
                f"but ${t.spent:.6f} is spent and ${t.reserved:.6f} reserved of the "
                f"${self.cap_usd:.6f} cap" + (" (calls in flight hold the rest: retry later)" if transient else ""),
                model=model, key=key, scope=self.scope, transient=transient)
        return Hold(usd, bounded=bounded, id=hold_id, key=where)

    def settle(self, hold: Hold, actual_usd: float) -> float:
        """Release the reservation and charge what the call really cost, at most the reservation of a bounded
        hold (the excess goes to overshoot_usd); idempotent. Returns the overshoot this settlement counted."""
        return self._settle_own(hold, actual_usd) or 0.0

    def _settle_own(self, hold: Hold, actual_usd: float) -> float | None:
        """Settle the hold here: the overshoot counted, or None if it was already settled (by this or another
        thread). A hold the ledger already charged in full (its lease ran out) counts no overshoot."""
        if not actual_usd >= 0:  # NaN or negative: the worst case is what we know
            actual_usd = hold.usd if hold.bounded else 0.0
        with self._lock:
            if hold.settled:
                return None
            hold.settled = True
        charged = min(actual_usd, hold.usd) if hold.bounded else actual_usd
        overshoot = actual_usd - charged
        return overshoot if self.ledger.settle(hold.id, hold.key, charged, overshoot) else 0.0

    def __repr__(self) -> str:
        t = self.ledger.totals()
        cap = "no cap" if self.cap_usd is None else f"cap ${self.cap_usd:.4f}"
        over = f", overshoot ${t.overshoot:.6f}" if t.overshoot else ""
        return (f"{type(self).__name__}({self.scope}: spent ${t.spent:.6f}, reserved ${t.reserved:.6f}, "
                f"{cap}{over}, {self.ledger.backend} ledger)")


class ChainedBudget(Budget):
    """A budget of its own (cap_usd, or None for no cap of its own) chained to parent budgets.

    A reservation must fit in its own cap and in every parent (each checked under its own lock, in order; a
    refusal releases whatever the chain had already reserved, so nothing stays held). A refusal's `scope` is
    that of the budget that refused: this one's for its own cap, the parent's otherwise (a parent that is
    itself chained reports its own chain's scope). Settling charges the actual cost to this budget and to
    every parent, once, however many times (or from however many threads) it is called.

    The server gives every request a ChainedBudget(cap of the request or None, [server budget, ...]): what a
    request spends counts against the server's cap, and the request's cap bounds that request alone."""

    def __init__(self, cap_usd: float | None, parents: Sequence[Budget], *, scope: str = "request"):
        super().__init__(cap_usd, scope=scope)
        self.parents = tuple(parents)

    @property
    def capped(self) -> bool:
        return self.cap_usd is not None or any(p.capped for p in self.parents)

    def reserve(self, usd: float, *, model: str = "", key: str = "", bounded: bool = True) -> ChainedHold:
        own = super().reserve(usd, model=model, key=key, bounded=bounded)
        held: list[Hold] = []
        try:
            for parent in self.parents:
                held.append(parent.reserve(usd, model=model, key=key, bounded=bounded))
        except BaseException:
            for parent, hold in zip(self.parents, held):
                parent.settle(hold, 0.0)
            super()._settle_own(own, 0.0)
            raise
        return ChainedHold(own.usd, bounded=bounded, id=own.id, key=own.key, parents=tuple(held))

    def settle(self, hold: Hold, actual_usd: float) -> float:
        overshoot = self._settle_own(hold, actual_usd)
        if overshoot is None:
            return 0.0
        for parent, parent_hold in zip(self.parents, getattr(hold, "parents", ())):
            overshoot = max(overshoot, parent.settle(parent_hold, actual_usd))
        return overshoot
