"""Dated price table and token-based cost estimates, for sources that record no cost.

Tokens are counted with tiktoken's cl100k_base for every model, the convention RouterBench used for
its recorded costs, so estimated and recorded costs are comparable. litellm ships that encoding;
we point tiktoken at litellm's copy so counting never downloads anything.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .validation import DataValidationError, as_bool

PRICE_COLUMNS = ("model", "input_usd_per_mtok", "output_usd_per_mtok", "source", "date")


def _use_bundled_tiktoken() -> None:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
        if bundled.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)


@lru_cache(maxsize=1)
def _encoding():
    _use_bundled_tiktoken()
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str | None) -> int:
    """cl100k_base token count of a text (0 for missing text)."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return 0
    return len(_encoding().encode(str(text), disallowed_special=()))


class PriceTable:
    """USD per million tokens (input, output) per model, each row with its source and date."""

    def __init__(self, table: pd.DataFrame, source: str = "prices"):
        missing = [c for c in PRICE_COLUMNS if c not in table.columns]
        if missing:
            raise DataValidationError(source, missing[0], None, "missing required column")
        for col in ("input_usd_per_mtok", "output_usd_per_mtok"):
            bad = pd.to_numeric(table[col], errors="coerce")
            rows = (bad.isna() | (bad < 0)).to_numpy().nonzero()[0]
            if len(rows):
                raise DataValidationError(source, col, int(rows[0]), "not a non-negative number",
                                          table[col].iloc[rows[0]])
        if table["model"].duplicated().any():
            row = int(table["model"].duplicated().to_numpy().nonzero()[0][0])
            raise DataValidationError(source, "model", row, "duplicate model", table["model"].iloc[row])
        self.table = table.set_index("model")

    def __contains__(self, model: str) -> bool:
        return model in self.table.index

    def price(self, model: str) -> tuple[float, float]:
        if model not in self.table.index:
            raise KeyError(f"no price for model {model!r}; known: {sorted(self.table.index)}")
        row = self.table.loc[model]
        return float(row["input_usd_per_mtok"]), float(row["output_usd_per_mtok"])

    def cost(self, model: str, input_tokens, output_tokens):
        """USD for the given token counts (scalars or arrays)."""
        p_in, p_out = self.price(model)
        return (input_tokens * p_in + output_tokens * p_out) / 1e6


def with_hidden_reasoning(suite, factor: float = 4.0):
    """The suite with every `hidden_reasoning` model's output tokens counted `factor` times in its cost.

    o1 models bill reasoning tokens that their replies do not show, so a cost estimated from the visible
    reply is a lower bound. This is the sensitivity variant: for each model flagged `hidden_reasoning` in the
    models table, cost_usd = (input_tokens x input price + factor x output_tokens x output price) / 1e6 with
    the models table's prices; other models and every score are unchanged. The suite keeps its name, so its
    splits are the same queries as the headline suite's. A suite without flagged models comes back as is.
    """
    from .suite import Suite

    models = suite.models
    if "hidden_reasoning" not in models.columns or not as_bool(models["hidden_reasoning"]).any():
        return suite
    flagged = models[as_bool(models["hidden_reasoning"]).to_numpy()].set_index("model")
    outcomes = suite.outcomes.copy()
    for model, row in flagged.iterrows():
        rows = outcomes["model"] == model
        sub = outcomes.loc[rows]
        outcomes.loc[rows, "cost_usd"] = (sub["input_tokens"].astype(float) * float(row["input_usd_per_mtok"])
                                          + factor * sub["output_tokens"].astype(float)
                                          * float(row["output_usd_per_mtok"])) / 1e6
    return Suite.from_tables(suite.name, suite.queries.drop(columns=["suite"]), outcomes, models,
                             suite.judgments, suite.sources)
