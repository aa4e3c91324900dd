"""A hard USD cap per run that holds under concurrency.

Each call reserves its worst case (prompt plus max_tokens at the model's rates) before it is sent, and
settles to the actual cost when it returns. Admission checks spent + reserved, so calls in flight can
never jointly overshoot the cap. A lock (not an asyncio primitive) makes it safe across threads and loops.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import BudgetExceeded


@dataclass
class Hold:
    usd: float
    settled: bool = False


class Budget:
    def __init__(self, cap_usd: float | None = None):
        if cap_usd is not None and cap_usd < 0:
            raise ValueError("a budget cap cannot be negative")
        self.cap_usd = cap_usd
        self._spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        return self._spent

    @property
    def reserved_usd(self) -> float:
        return self._reserved

    @property
    def remaining_usd(self) -> float | None:
        return None if self.cap_usd is None else self.cap_usd - self._spent - self._reserved

    def reserve(self, usd: float, *, model: str = "", key: str = "") -> Hold:
        with self._lock:
            if self.cap_usd is not None and self._spent + self._reserved + usd > self.cap_usd + 1e-12:
                raise BudgetExceeded(
                    f"budget refused a call to {model!r} (key {key}): it may cost up to ${usd:.6f}, but "
                    f"${self._spent:.6f} is spent and ${self._reserved:.6f} reserved of the "
                    f"${self.cap_usd:.6f} cap", model=model, key=key)
            self._reserved += usd
            return Hold(usd)

    def settle(self, hold: Hold, actual_usd: float) -> None:
        """Release the reservation and charge what the call really cost (idempotent)."""
        with self._lock:
            if hold.settled:
                return
            hold.settled = True
            self._reserved -= hold.usd
            self._spent += actual_usd

    def __repr__(self) -> str:
        cap = "no cap" if self.cap_usd is None else f"cap ${self.cap_usd:.4f}"
        return f"Budget(spent ${self._spent:.6f}, reserved ${self._reserved:.6f}, {cap})"
