"""Which provider failures are worth another attempt, and how long to wait before it.

Rate limits, timeouts, connection failures and 5xx are transient; other 4xx (bad request, auth, not
found, context too long) will fail the same way again. Waits grow exponentially with full jitter, so
parallel callers that failed together do not retry together; a provider's Retry-After is honoured.
"""
from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass


_CONTEXT_OVERFLOW = ("context window", "context length", "context size", "maximum context", "context limit")


@dataclass(frozen=True)
class Failure:
    kind: str  # context_window (the prompt does not fit the model: a client error) | rate_limit | timeout | connection | server | malformed_response | client_error | unexpected
    status: int | None
    retryable: bool
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped (and the run may then fail)

    def delay(self, attempt: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        wait = (rng or random).uniform(0.0, ceiling)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_retry_after_s))
        return wait


def _headers(exc: BaseException):
    for source in (getattr(exc, "litellm_response_headers", None),
                   getattr(getattr(exc, "response", None), "headers", None),
                   getattr(exc, "headers", None)):
        if source:
            yield source


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After (seconds or HTTP date) or retry-after-ms header, if any."""
    for headers in _headers(exc):
        try:
            value = headers.get("retry-after-ms")
            if value is not None:
                return max(0.0, float(value) / 1000)
            value = headers.get("retry-after")
            if value is None:
                continue
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def classify(exc: BaseException) -> Failure | None:
    """A Failure for provider-side exceptions; None for anything else (a bug to propagate, not to retry)."""
    from ._litellm import litellm

    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    text = str(exc).lower()
    if isinstance(exc, litellm.ContextWindowExceededError) or (
            (status is None or 400 <= status < 500) and any(s in text for s in _CONTEXT_OVERFLOW)):
        return Failure("context_window", status if status is not None else 400, False)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return Failure("rate_limit", 429, True, retry_after(exc))
    if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)) or status == 408:
        return Failure("timeout", status, True, retry_after(exc))
    if isinstance(exc, litellm.APIConnectionError) or "connection error" in text:
        return Failure("connection", status, True)
    if status is not None and status >= 500:
        garbled = any(s in text for s in ("invalid response", "expecting", "json"))
        return Failure("malformed_response" if garbled else "server", status, True, retry_after(exc))
    if status is not None and 400 <= status < 500:
        return Failure("client_error", status, False)
    module = type(exc).__module__.split(".")[0]
    if module in ("litellm", "openai", "httpx", "httpcore", "aiohttp"):
        return Failure("unexpected", status, False)
    return None
