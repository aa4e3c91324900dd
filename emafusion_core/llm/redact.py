"""Keep secrets out of everything the gateway writes: cache entries, logs and exception messages.

Providers sometimes echo the key back ("Incorrect API key provided: sk-..."), and litellm puts provider
messages into its exceptions, so every message is scrubbed before it leaves the gateway.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Mapping

_SECRET_ENV = re.compile(r"(API_KEY|_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_SECRET_FIELD = re.compile(r"(key|token|secret|password)", re.IGNORECASE)
# Shapes of common provider keys, for secrets we were never told about.
_PATTERNS = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|(?<=Bearer )[A-Za-z0-9._\-]{8,})")
MASK = "***"


def secrets_in(endpoints: Mapping[str, Mapping], environ: Mapping[str, str] | None = None) -> set[str]:
    """Values that must never be written: key-like endpoint fields and key-like environment variables."""
    environ = os.environ if environ is None else environ
    found = {str(v) for name, v in environ.items() if _SECRET_ENV.search(name) and v}
    for settings in endpoints.values():
        found |= {str(v) for name, v in settings.items() if _SECRET_FIELD.search(name) and isinstance(v, str)}
    return {s for s in found if len(s) >= 8}  # short values ("none", "1") are not secrets and would mangle text


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def values(self, text: str) -> str:
        """Mask only the configured secret values (for model replies: a key-shaped word a model writes is
        content, a key we were given that a reply quotes is not)."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self.secrets:
            out = out.replace(secret, MASK)
        return _PATTERNS.sub(MASK, out)
