"""What can go wrong in the gateway, as types a caller can branch on.

Every error names the model and the cache key, carries the USD already incurred (so a failed run is still
charged), and its message has passed through the redactor: no API key ever reaches a traceback.
"""
from __future__ import annotations


class LLMError(RuntimeError):
    """Base of all gateway errors. `kind` is a short machine-readable label."""

    kind = "error"

    def __init__(self, message: str, *, model: str = "", key: str = "", cost_usd: float = 0.0):
        super().__init__(message)
        self.model, self.key, self.cost_usd = model, key, cost_usd


class ReplayMiss(LLMError):
    """Replay mode found no usable cached reply; nothing was sent."""

    kind = "replay_miss"


class BudgetExceeded(LLMError):
    """The call could cost more (priced at its max_tokens) than the run's remaining budget; nothing was sent."""

    kind = "budget"

    def __init__(self, message: str, *, scope: str = "", transient: bool = False, **kw):
        super().__init__(message, **kw)
        self.transient = transient  # it would fit once the calls in flight settle: retry later
        self.scope = scope  # the Budget.scope of the budget that refused ("" if no budget did, e.g. no max_tokens)


class PriceUnknown(LLMError):
    """Neither our price table nor litellm's price map knows the model; nothing was sent."""

    kind = "price_unknown"


class ProviderError(LLMError):
    """The provider failed (after retries, if the failure was retryable). Nothing was cached."""

    def __init__(self, message: str, *, kind: str, status: int | None, attempts: int, **kw):
        super().__init__(message, **kw)
        self.kind, self.status, self.attempts = kind, status, attempts


class BadReply(LLMError):
    """The provider answered (and charged) but the reply is empty, truncated or not the JSON asked for.

    Never served from the cache as a success. `text` keeps what came back, for diagnosis."""

    def __init__(self, message: str, *, kind: str, text: str | None = None, input_tokens: int | None = None,
                 output_tokens: int | None = None, recorded: bool = False, **kw):
        super().__init__(message, **kw)
        self.kind, self.text, self.recorded = kind, text, recorded
        self.input_tokens, self.output_tokens = input_tokens, output_tokens


class DeadlineExceeded(LLMError):
    """The unit of work's deadline passed before the call could finish (or start); retries stop at it.

    `sent` says whether an attempt was on its way when time ran out (the provider may bill it: the gateway
    then charges the call's reservation, its worst case)."""

    kind = "deadline"

    def __init__(self, message: str, *, sent: bool = False, **kw):
        super().__init__(message, **kw)
        self.sent = sent
