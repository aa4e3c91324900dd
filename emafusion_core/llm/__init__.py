"""The LLM gateway: every LLM call of the project goes through LLMClient (disk cache, budget, retries,
per-model concurrency, cost). Importing this package does not import litellm; the first call does."""
from .budget import Budget, ChainedBudget
from .cache import ResponseCache, cache_key
from .client import CallRecord, GatewayStats, LLMClient
from .errors import BadReply, BudgetExceeded, DeadlineExceeded, LLMError, PriceUnknown, ProviderError, ReplayMiss
from .executor import LiteLLMExecutor
from .pricing import Pricer
from .retry import RetryPolicy
from .types import Reply, Request

__all__ = ["BadReply", "Budget", "BudgetExceeded", "CallRecord", "ChainedBudget", "DeadlineExceeded", "GatewayStats", "LLMClient",
           "LLMError", "LiteLLMExecutor", "PriceUnknown", "Pricer", "ProviderError", "ReplayMiss", "Reply", "Request",
           "ResponseCache", "RetryPolicy", "cache_key"]
