"""A hard USD cap per run that holds under concurrency, and budgets chained to others (a cap per request).

Each call reserves its worst case before it is sent (a guaranteed upper bound on the prompt's tokens plus
max_tokens, at the model's rates: see LLMClient.input_bound) and settles to the provider's reported cost when
it returns. Admission checks spent + reserved, so calls in flight can never jointly overshoot the cap. A
settlement never charges more than its reservation (`bounded` holds): a provider that reports more than the
bound allows (a dishonest or buggy usage report) is charged the reservation, and the excess is counted in
`overshoot_usd` (and logged by the gateway) instead, so `spent_usd <= cap_usd` holds whatever a provider
reports. A lock (not an asyncio primitive) makes it safe across threads and loops.

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


@dataclass
class Hold:
    usd: float
    settled: bool = False
    bounded: bool = True  # usd is a guaranteed bound: settling charges at most usd (the rest is overshoot)


@dataclass
class ChainedHold(Hold):
    """A reservation in a ChainedBudget: its own hold plus the one it took in each parent, in order."""

    parents: tuple[Hold, ...] = ()


class Budget:
    """A USD cap (None: no cap, spending is only counted). `scope` labels its refusals (BudgetExceeded.scope)."""

    def __init__(self, cap_usd: float | None = None, *, scope: str = "run"):
        if cap_usd is not None and not cap_usd >= 0:  # also refuses NaN
            raise ValueError(f"a budget cap must be a non-negative number, not {cap_usd!r}")
        self.cap_usd = cap_usd
        self.scope = scope
        self._spent = 0.0
        self._reserved = 0.0
        self._overshoot = 0.0
        self._lock = threading.Lock()

    @property
    def capped(self) -> bool:
        """Whether a reservation can be refused: the gateway prices a call's worst case only then."""
        return self.cap_usd is not None

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def reserved_usd(self) -> float:
        return self._reserved

    @property
    def overshoot_usd(self) -> float:
        """Reported cost beyond the reservations of bounded holds: never charged to spent_usd, counted here."""
        return self._overshoot

    @property
    def remaining_usd(self) -> float | None:
        return None if self.cap_usd is None else self.cap_usd - self._spent - self._reserved

    def reserve(self, usd: float, *, model: str = "", key: str = "", bounded: bool = True) -> Hold:
        if not usd >= 0 or usd == float("inf"):
            raise ValueError(f"a reservation must be a finite non-negative number, not {usd!r}")
        with self._lock:
            if self.cap_usd is not None and self._spent + self._reserved + usd > self.cap_usd + 1e-12:
                transient = self._reserved > 0 and self._spent + usd <= self.cap_usd + 1e-12
                raise BudgetExceeded(
                    f"{self.scope} budget refused a call to {model!r} (key {key}): it may cost up to ${usd:.6f}, "
                    f"but ${self._spent:.6f} is spent and ${self._reserved:.6f} reserved of the "
                    f"${self.cap_usd:.6f} cap" + (" (calls in flight hold the rest: retry later)" if transient else ""),
                    model=model, key=key, scope=self.scope, transient=transient)
            self._reserved += usd
            return Hold(usd, bounded=bounded)

    def settle(self, hold: Hold, actual_usd: float) -> None:
        """Release the reservation and charge what the call really cost, at most the reservation of a bounded
        hold (the excess goes to overshoot_usd); idempotent."""
        self._settle_own(hold, actual_usd)

    def _settle_own(self, hold: Hold, actual_usd: float) -> bool:
        """Settle the hold here; False if it was already settled (by this or another thread)."""
        if not actual_usd >= 0:  # NaN or negative: the worst case is what we know
            actual_usd = hold.usd if hold.bounded else 0.0
        with self._lock:
            if hold.settled:
                return False
            hold.settled = True
            self._reserved = max(0.0, self._reserved - hold.usd)
            charged = min(actual_usd, hold.usd) if hold.bounded else actual_usd
            self._overshoot += actual_usd - charged
            self._spent += charged
            return True

    def __repr__(self) -> str:
        cap = "no cap" if self.cap_usd is None else f"cap ${self.cap_usd:.4f}"
        over = f", overshoot ${self._overshoot:.6f}" if self._overshoot else ""
        return (f"{type(self).__name__}({self.scope}: spent ${self._spent:.6f}, reserved ${self._reserved:.6f}, "
                f"{cap}{over})")


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
        return ChainedHold(own.usd, bounded=bounded, parents=tuple(held))

    def settle(self, hold: Hold, actual_usd: float) -> None:
        if not self._settle_own(hold, actual_usd):
            return
        for parent, parent_hold in zip(self.parents, getattr(hold, "parents", ())):
            parent.settle(parent_hold, actual_usd)
