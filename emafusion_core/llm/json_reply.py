"""Reading JSON out of an LLM reply: fences, chatter around the object, single quotes are all tolerated;
anything else is None (the caller records an abstention), never an exception."""
from __future__ import annotations

import json
import re

_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_json_object(text: str | None) -> dict | None:
    if not text:
        return None
    candidates = [text.strip()]
    match = _OBJECT.search(text)
    if match:
        candidates.append(match.group(0))
    for candidate in candidates:
        candidate = candidate.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        for attempt in (candidate, candidate.replace("'", '"')):
            try:
                value = json.loads(attempt)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
