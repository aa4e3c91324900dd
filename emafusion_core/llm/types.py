"""The request the gateway caches on and the reply it returns, both plain data."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Call settings that are about *where and how* to send, not *what* to ask: they belong to the client's
# endpoints (kept out of cache keys, and secrets among them out of everything written).
NOT_SAMPLING = frozenset({
    "api_key", "api_base", "base_url", "api_version", "organization", "headers", "extra_headers", "timeout",
    "num_retries", "max_retries", "mock_response", "stream", "metadata", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "vertex_credentials", "azure_ad_token",
})


@dataclass(frozen=True)
class Request:
    """One chat completion: everything here goes into the cache key.

    `params` are sampling parameters (temperature, max_tokens, top_p, seed, stop, logprobs, ...).
    `template_version` names the prompt template that built `messages`: bump it when the template changes,
    so old replies are not served for new prompts that happen to coincide."""

    model: str
    messages: list[dict]
    params: dict = field(default_factory=dict)
    response_format: dict | None = None
    template_version: str = ""

    def __post_init__(self):
        misplaced = sorted(NOT_SAMPLING & set(self.params))
        if misplaced:
            raise ValueError(f"{misplaced} are call settings, not sampling parameters: pass them in "
                             f"LLMClient(endpoints={{model: {{...}}}}), so they stay out of cache keys")
        if not self.messages:
            raise ValueError("a request needs at least one message")


@dataclass(frozen=True)
class Reply:
    """A successful completion. `cost_usd` is what the generation cost when it was made (also on a cache hit,
    so replayed runs report the same cost); `cached` says whether this run paid for it."""

    key: str
    model: str
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    reply_id: str | None
    finish_reason: str | None
    logprobs: list[dict] | None = None  # [{"token", "logprob", "top": [[token, logprob], ...]}]
    created_at: float = 0.0
    cached: bool = False

    def record(self) -> dict[str, Any]:
        """The cached value (JSON-able; `cached` is a property of the run, not of the reply)."""
        out = asdict(self)
        out.pop("cached")
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any], cached: bool = True) -> "Reply":
        fields = {k: record[k] for k in cls.__dataclass_fields__ if k in record and k != "cached"}
        return cls(**fields, cached=cached)
