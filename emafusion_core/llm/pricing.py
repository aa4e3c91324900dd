"""USD per call: our dated price table first, litellm's offline price map for everything else.

Our table wins because it is what the paper's numbers were computed with (dated list prices), while
litellm's map follows today's prices and lacks retired models.
"""
from __future__ import annotations

from typing import Mapping, Protocol

from .errors import PriceUnknown


class PriceSource(Protocol):
    """USD per million tokens; emafusion_core.data.prices.PriceTable is one."""

    def __contains__(self, model: str) -> bool: ...

    def price(self, model: str) -> tuple[float, float]: ...


class _MappingPrices:
    def __init__(self, table: Mapping[str, tuple[float, float]]):
        self.table = dict(table)

    def __contains__(self, model: str) -> bool:
        return model in self.table

    def price(self, model: str) -> tuple[float, float]:
        p_in, p_out = self.table[model]
        return float(p_in), float(p_out)


class Pricer:
    """Rates per token for a model; `table` maps model -> (input, output) USD per million tokens."""

    def __init__(self, table: PriceSource | Mapping[str, tuple[float, float]] | None = None, *,
                 use_litellm: bool = True):
        if table is None:
            table = {}
        self.table = table if hasattr(table, "price") else _MappingPrices(table)
        self.use_litellm = use_litellm
        self._rates: dict[str, tuple[float, float]] = {}

    def rates(self, model: str) -> tuple[float, float]:
        """(USD per input token, USD per output token); PriceUnknown if nobody knows the model."""
        if model not in self._rates:
            self._rates[model] = self._lookup(model)
        return self._rates[model]

    def _lookup(self, model: str) -> tuple[float, float]:
        if model in self.table:
            p_in, p_out = self.table.price(model)
            return p_in / 1e6, p_out / 1e6
        if self.use_litellm:
            from ._litellm import litellm

            try:
                info = litellm.get_model_info(model)
            except Exception:
                info = {}
            p_in, p_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
            if p_in is not None and p_out is not None:
                return float(p_in), float(p_out)
        raise PriceUnknown(f"no price for model {model!r}: add it to the price table given to Pricer "
                           "(USD per million input and output tokens, with its date)", model=model)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        r_in, r_out = self.rates(model)
        return input_tokens * r_in + output_tokens * r_out
