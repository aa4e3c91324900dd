"""Answer extraction per answer format: the one place where a reply's answer is read.

Peer-agreement judges compare two models' answers with `agreement`, and the data build scores the zeroeval
suite with `score_answer`: both read replies through the same functions, so judging and scoring never
disagree about what a model answered. Every function returns a normalised answer or None when nothing can
be extracted (a judge then abstains; the scorer counts the reply as "no answer", score 0).

Answer formats (the queries table's `answer_format`):
- `multiple_choice`: a letter A-J (`extract_choice`).
- `number`: a worked solution's final number (`extract_number`: after '####', else a JSON `answer` field,
  else the last \\boxed{}, else the last number in the text); fractions such as 3/4 become their decimal value.
- `math`: a ZeroEval-style reply, the answer given in a JSON object `{"reasoning": ..., "answer": ...}`
  (`extract_math`): the first number of the `answer` field (ZeroEval's rule), no fallback to the last number
  of the text: a reply without an answer field has no answer.
- `literal`: a ZeroEval CRUXEval reply whose `answer` field is a Python literal (`extract_literal`): parsed
  with ast.literal_eval (data only: model text is never evaluated as code) and put in a canonical form.
- `code`: the first fenced code block; compared by token-set similarity.
- `free_text`: token-set similarity of the whole replies.
"""
from __future__ import annotations

import ast
import json
import re
import warnings

_CHOICE_PATTERNS = (
    # A reply that opens with its letter: "C", "A)", "(B) because", "D.", "A\n". For A-E a following space is
    # accepted too (as before); F-J need punctuation or the end ("I do" is not an answer).
    re.compile(r"^\s*(?:\(?([A-E])\)?(?:[\s.):,]|$)|\(([F-J])\)|([F-J])(?:[.):,]|\s*$))"),
    # "the answer is (C)" (MMLU-Pro's closing phrase; a chain of thought may name other options before it)
    re.compile(r"(?i:answer\s+is)\s*:?\s*\(?([A-Ea-e]|[F-J])\)?(?![A-Za-z0-9])"),
    re.compile(r"(?i:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Ea-e]|[F-J])\)?\b"),
    re.compile(r"\(([A-J])\)"),
)
_NUMBER_OR_FRACTION = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?")
_FIRST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # ZeroEval's "first number" (after commas are removed)
_FRACTION = re.compile(r"^\(?\s*(-?\d+(?:\.\d+)?)\s*\)?\s*/\s*\(?\s*(-?\d+(?:\.\d+)?)\s*\)?$")
# \frac{3}{4} (also \dfrac, \tfrac, -\frac) with plain numbers: read as the fraction 3/4
_LATEX_FRACTION = re.compile(r"^(-?)\\[dt]?frac\{\s*(-?\d+(?:\.\d+)?)\s*\}\{\s*(\d+(?:\.\d+)?)\s*\}$")
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[^\sA-Za-z0-9_]")
_MAX_LITERAL_CHARS = 20_000  # longer "literals" are compared as text, never parsed


# --------------------------------------------------------------------------- multiple choice
def extract_choice(text: str | None) -> str | None:
    """The chosen letter (A-J), or None."""
    if not text:
        return None
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match:
            return next(g for g in match.groups() if g).upper()
    return None


# --------------------------------------------------------------------------- numbers
def _format_number(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def _fraction_value(text: str) -> float | None:
    """a/b (optionally negative, in parentheses, with spaces) as a float; None for anything else."""
    match = _FRACTION.match(text)
    if not match:
        return None
    num, den = float(match.group(1)), float(match.group(2))
    return None if den == 0 else num / den


def number_in_answer(answer: str | None) -> str | None:
    """ZeroEval's reading of an answer string: drop '$' and ',', a fraction a/b becomes its decimal value,
    then the first number in what is left. Parsing only: nothing is evaluated."""
    if answer is None:
        return None
    text = str(answer).replace("$", "").strip().replace(",", "")
    text = _LATEX_FRACTION.sub(r"\1\2/\3", text)
    if "/" in text:
        value = _fraction_value(text)
        if value is not None:
            text = str(value)
    match = _FIRST_NUMBER.search(text)
    if not match:
        return None
    try:
        return _format_number(float(match.group()))
    except (ValueError, OverflowError):
        return None


def _last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (nested braces allowed)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def extract_number(text: str | None) -> str | None:
    """The final answer of a worked solution: after '####' if present, else the `answer` field of a JSON
    reply, else the last \\boxed{}, else the last number. A fraction a/b counts as its decimal value."""
    if not text:
        return None
    if "####" in text:
        return number_in_answer(text.split("####")[-1])
    field = extract_answer_field(text)
    if field is not None:
        return number_in_answer(str(field))
    boxed = _last_boxed(text)
    if boxed is not None:
        return number_in_answer(boxed)
    numbers = _NUMBER_OR_FRACTION.findall(text)
    return number_in_answer(numbers[-1]) if numbers else None


# --------------------------------------------------------------------------- JSON replies (ZeroEval)
def _first_complete_json(text: str):
    """The first balanced {...} in the text, parsed as JSON with its line breaks removed (ZeroEval's rule);
    None when that object does not parse."""
    depth, start = 0, None
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                try:
                    return json.loads(text[start:i + 1].replace("\n", ""))
                except (json.JSONDecodeError, RecursionError):
                    return None
    return None


_LENIENT_ANSWER = (
    re.compile(r'"answer"\s*:\s*"([^"]*?)"'),
    re.compile(r'"answer"\s*:\s*"(.*?)"', re.S),
    re.compile(r'"answer"\s*:\s*([^,\s]*)'),
    re.compile(r'answer\s*:\s*([^,\s]*)'),
)


def extract_answer_field(text: str | None):
    """The `answer` of a reply that gives its answer as a JSON object: the first complete JSON object's
    `answer` (any JSON type), else a lenient `"answer": ...` match (quotes optional; a string), else None."""
    if not text:
        return None
    parsed = _first_complete_json(text)
    if isinstance(parsed, dict) and "answer" in parsed:
        return parsed["answer"]
    for pattern in _LENIENT_ANSWER:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def extract_math(text: str | None) -> str | None:
    """ZeroEval GSM8K / MATH reply: the first number of its `answer` field (a bare \\boxed{} answer when the
    reply has no answer field and ends on one); None when the reply states no answer."""
    if not text:
        return None
    field = extract_answer_field(text)
    if field is None and "boxed" in text[-30:]:  # a reply that closes on a bare \boxed{} answer
        field = _last_boxed(text)
    return None if field is None else number_in_answer(str(field))


def reference_number(reference: str) -> str | None:
    """A GSM8K / MATH reference answer (GSM8K's '# 18' form included), read like a model's answer."""
    return number_in_answer(str(reference).replace("#", "").strip())


# --------------------------------------------------------------------------- Python literals (CRUXEval)
def _canonical(value) -> str:
    """A text form equal for equal literals of the same types (sets and dicts in sorted order)."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_canonical, value)) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(map(_canonical, value))
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (set, frozenset)):
        items = sorted(map(_canonical, value))
        return ("frozenset" if isinstance(value, frozenset) else "set") + "{" + ", ".join(items) + "}"
    if isinstance(value, dict):
        items = sorted(f"{_canonical(k)}: {_canonical(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)


def _literal_value(text: str):
    """(True, value) when the text is a Python literal (ast.literal_eval: data only, never code)."""
    if len(text) > _MAX_LITERAL_CHARS:
        return False, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        try:
            return True, ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return False, None


def _top_level(value) -> str:
    """At the top level a string reads as its bare text, written as in a literal (line breaks as \\n) and with
    any quote characters at its ends stripped: ZeroEval strips the quotes of both answers (so a stray quote
    does not matter), and an answer inside a JSON string cannot say whether `816` is a number or a string.
    Containers keep their types."""
    return repr(value)[1:-1].strip("'\"") if isinstance(value, str) else _canonical(value)


def canonical_literal(text: str) -> str:
    """A Python literal's canonical text (a top-level string as its bare text). A number with spaces around
    it, a bracket-less tuple such as `6,8,8`, or text that is no literal, is taken as a bare string written
    as in a literal: the quote characters at its ends stripped, spaces kept, so `abc` and `'abc'` read the same."""
    text = str(text)
    body = text.strip()
    ok, value = _literal_value(body)
    if ok:
        if isinstance(value, str):
            return _top_level(value)
        if isinstance(value, (tuple, list, dict, set, frozenset)):
            if body[:1] in "([{":
                return _canonical(value)
        elif body == text:  # a bare number, boolean or None (not `  7  `, which is text)
            return _canonical(value)
    return text.strip("'\"")


def extract_literal(text: str | None) -> str | None:
    """CRUXEval reply: the `answer` field as a canonical Python literal (its line breaks and tabs written as
    \\n and \\t, as in a literal); None when the reply states no answer. A JSON value (number, list, ...) is its
    Python value."""
    field = extract_answer_field(text)
    if field is None:
        return None
    if not isinstance(field, str):
        return _top_level(field)
    return canonical_literal(field.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t"))


# --------------------------------------------------------------------------- code and free text
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


# --------------------------------------------------------------------------- per format
EXACT_EXTRACTORS = {"multiple_choice": extract_choice, "number": extract_number, "math": extract_math,
                    "literal": extract_literal}


def extract_answer(answer_format: str, text: str | None) -> str | None:
    """The normalised answer of a reply in an exact format (multiple_choice, number, math, literal)."""
    return EXACT_EXTRACTORS[answer_format](text)


def score_answer(answer_format: str, reply: str | None, reference: str) -> float:
    """1.0 when the reply's answer equals the reference answer, else 0.0 (no extractable answer: 0.0).
    The reference is read with the same rules: a letter, a number (GSM8K's '# 18' included) or a literal."""
    got = extract_answer(answer_format, reply)
    if got is None:
        return 0.0
    if answer_format == "multiple_choice":
        want = extract_choice(reference)
    elif answer_format == "literal":
        want = canonical_literal(reference)
    else:
        want = reference_number(reference)
    return float(want is not None and got == want)


def agreement(answer_format: str, a: str | None, b: str | None) -> float | None:
    """1/0 for exact formats (choice letter, number, math, literal), a similarity in [0, 1] for code and
    free text, None when either answer yields nothing to compare."""
    if answer_format in EXACT_EXTRACTORS:
        x, y = extract_answer(answer_format, a), extract_answer(answer_format, b)
        return None if x is None or y is None else float(x == y)
    if answer_format == "code":
        x, y = extract_code(a), extract_code(b)
        return None if x is None or y is None else similarity(x, y)
    if not a or not b:
        return None
    return similarity(a, b)
