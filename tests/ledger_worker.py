"""One process hammering a shared budget (for tests/test_ledger.py): `python ledger_worker.py STORE CAP N`,
STORE a diskcache directory or a redis:// URL. Threads reserve a random worst case, settle a random part of
it, and the process prints what it charged and how often it was refused, as JSON. `hold STORE USD` reserves
and dies without settling (a crashed worker)."""
from __future__ import annotations

import json
import os
import random
import sys
import threading

from emafusion_core.llm import Budget, BudgetExceeded
from emafusion_core.llm.ledger import DiskStore, Ledger, RedisStore


def store_of(spec: str):
    if spec.startswith("redis://"):
        import redis

        return RedisStore(redis.Redis.from_url(spec))
    import diskcache

    return DiskStore(diskcache.Cache(spec))


def hammer(budget: Budget, n: int, seed: int, out: dict, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        worst = rng.uniform(0.001, 0.05)
        try:
            hold = budget.reserve(worst)
        except BudgetExceeded:
            with lock:
                out["refused"] += 1
            continue
        actual = rng.choice([rng.uniform(0, worst), worst, worst * 3])  # some providers over-report
        budget.settle(hold, actual)
        with lock:
            out["charged"] += min(actual, worst)


def main(argv: list[str]) -> None:
    if argv[0] == "hold":
        budget = Budget(10.0, scope="server", ledger=Ledger(store_of(argv[1]), name="t", lease_s=float(argv[3])))
        budget.reserve(float(argv[2]))
        print("held", flush=True)
        os._exit(0)  # dies holding it
    spec, cap, n = argv[0], float(argv[1]), int(argv[2])
    budget = Budget(cap, scope="server", ledger=Ledger(store_of(spec), name="t", lease_s=600))
    out, lock = {"charged": 0.0, "refused": 0}, threading.Lock()
    threads = [threading.Thread(target=hammer, args=(budget, n, os.getpid() * 10 + i, out, lock)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
