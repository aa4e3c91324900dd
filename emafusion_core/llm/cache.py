"""The response cache: a diskcache.Cache holding one JSON record per request key.

A record has a status: "ok" (served as a success), "failed" (an empty, truncated or malformed reply the
provider charged for: kept so that replay reproduces the failure and its cost, never served as a success)
or "bad" (a reply the caller's parser rejected via mark_bad: never served again). Values are JSON text,
not pickles, so a cache stays readable across versions of this code.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, MutableMapping

from .types import Request

KEY_SCHEMA = "llm-v1"  # bump when the key's recipe changes


def _canonical(value: Any) -> Any:
    """Make equal parameters serialise equally (temperature 0 == 0.0; None means unset)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "model_json_schema"):  # a pydantic class given as response_format
        return {"pydantic_schema": value.model_json_schema()}
    return value


def cache_key(request: Request) -> str:
    """sha256 over model, full messages, sampling parameters, response format and template version."""
    payload = {
        "schema": KEY_SCHEMA,
        "model": request.model,
        "messages": request.messages,
        "params": _canonical(request.params),
        "response_format": _canonical(request.response_format),
        "template_version": request.template_version,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Status-aware records over any key-value store (a diskcache.Cache in use, a dict in unit tests)."""

    def __init__(self, store: MutableMapping[str, str]):
        self.store = store

    def record(self, key: str) -> dict | None:
        raw = self.store.get(key)
        return None if raw is None else json.loads(raw)

    def success(self, key: str) -> dict | None:
        rec = self.record(key)
        return rec if rec is not None and rec.get("status") == "ok" else None

    def put_success(self, key: str, record: dict) -> None:
        self._write(key, {**record, "status": "ok"})

    def put_failure(self, key: str, record: dict) -> None:
        """Record a charged failure, unless a success is already there (a failed refresh keeps the old reply)."""
        if self.success(key) is None:
            self._write(key, {**record, "status": "failed"})

    def mark_bad(self, key: str, reason: str = "rejected by the caller's parser") -> bool:
        """Never serve this reply again (a live call will re-ask). Returns whether there was a record."""
        rec = self.record(key)
        if rec is None:
            return False
        self._write(key, {**rec, "status": "bad", "bad_reason": reason})
        return True

    def __contains__(self, key: str) -> bool:
        return key in self.store

    def _write(self, key: str, record: dict) -> None:
        self.store[key] = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
