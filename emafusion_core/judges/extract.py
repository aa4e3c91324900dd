"""Answer extraction per answer format, so two models' answers can be compared (peer agreement).

Returns a normalised answer or None when nothing can be extracted (the judge then abstains).
"""
from __future__ import annotations

import re

_CHOICE_PATTERNS = (
    re.compile(r"^\s*\(?([A-E])\)?(?:[\s.):,]|$)"),  # "C", "A)", "(B) because", "D."
    re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-E])\)?\b", re.I),
    re.compile(r"\(([A-E])\)"),
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]")


def extract_choice(text: str | None) -> str | None:
    if not text:
        return None
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).upper()
    return None


def extract_number(text: str | None) -> str | None:
    """The final answer of a worked solution: after '####' if present, else the last number."""
    if not text:
        return None
    tail = text.split("####")[-1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    if not numbers:
        return None
    value = numbers[0] if "####" in text else numbers[-1]
    value = value.replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return None
    return str(int(number)) if number == int(number) else f"{number:.6g}"


def extract_code(text: str | None) -> str | None:
    """The first fenced code block (or the whole text when it looks like bare code)."""
    if not text:
        return None
    match = _FENCE.search(text)
    if match:
        return match.group(1).strip()
    stripped = text.strip()
    return stripped if stripped.startswith(("def ", "import ", "from ", "class ")) else None


def token_set(text: str) -> set[str]:
    return set(_WORD.findall(text))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of token sets: a soft agreement for code and free text."""
    sa, sb = token_set(a), token_set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def agreement(answer_format: str, a: str | None, b: str | None) -> float | None:
    """1/0 for exact formats (choice letter, number), a similarity in [0, 1] for code and free text,
    None when either answer yields nothing to compare."""
    if answer_format == "multiple_choice":
        x, y = extract_choice(a), extract_choice(b)
        return None if x is None or y is None else float(x == y)
    if answer_format == "number":
        x, y = extract_number(a), extract_number(b)
        return None if x is None or y is None else float(x == y)
    if answer_format == "code":
        x, y = extract_code(a), extract_code(b)
        return None if x is None or y is None else similarity(x, y)
    if not a or not b:
        return None
    return similarity(a, b)
