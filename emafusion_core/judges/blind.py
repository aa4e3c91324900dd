"""Are the judges blind on a suite? Every judge reads answer texts: without response texts, or with answers in a
format nothing extracts, no judge sees anything, a judged cascade only pays for extra calls, and calibration has
to fall back to "no cascade" (issue 13). `blind_judges_warning(suite)` returns the warning to print (or None);
`emafusion data check` and the comparison notebook print it wherever cascade numbers appear.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .state_verifier import answer_key

MIN_READABLE = 0.5  # share of (query, model) outcomes with a text and an extractable answer below which we warn


def judge_visibility(suite) -> pd.DataFrame:
    """Per benchmark: share of (query, model) outcomes with a response text, and with an answer the judges can
    extract (judges/extract.py; code and free text count when non-empty)."""
    out = suite.outcomes
    fmt = suite.queries.set_index("query_id")["answer_format"]
    bench = suite.queries.set_index("query_id")["benchmark"]
    text = out["response"] if "response" in out.columns else pd.Series([None] * len(out), index=out.index)
    has_text = text.notna() & (text.astype(str).str.len() > 0)
    formats = fmt.loc[out["query_id"].astype(str)].to_numpy()
    readable = np.array([bool(h) and answer_key(f, t) is not None for f, t, h in zip(formats, text, has_text)])
    frame = pd.DataFrame({"benchmark": bench.loc[out["query_id"].astype(str)].to_numpy(),
                          "with_text": has_text.to_numpy(), "readable": readable})
    return frame.groupby("benchmark").agg(with_text=("with_text", "mean"), readable=("readable", "mean"))


def blind_judges_warning(suite, min_readable: float = MIN_READABLE) -> str | None:
    """The warning text when the judges are blind (or nearly) on the whole suite or on some benchmarks."""
    vis = judge_visibility(suite)
    blind = vis[vis["readable"] < min_readable]
    if blind.empty:
        return None
    parts = ", ".join(f"{b} ({r.with_text:.0%} with text, {r.readable:.0%} readable)" for b, r in blind.iterrows())
    whole = len(blind) == len(vis)
    scope = "on this suite" if whole else "on some benchmarks of this suite"
    return (f"warning: the judges are blind {scope}: {parts}. Every judge reads answer texts; where none can be "
            f"read a judged cascade only pays for extra calls, so its numbers there are those of its router (or "
            f"worse); calibrate can choose 'no cascade'.")
