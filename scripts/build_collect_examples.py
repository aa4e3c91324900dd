"""Build examples/collect/queries*.jsonl: real questions from shipped suites, with their references, for
`emafusion collect` (the README's walk-through, the collect tests and the live demo notebook).

GSM8K questions (numeric scorer) come from data/zeroeval, MMLU-Pro questions (choice scorer) from data/mmlupro.
The shipped suites keep no reference column, so each reference is read back from the recorded replies that the
suite scored correct (with judges/extract.py, the extraction the suites were scored with), and a question is
used only when every correct reply agrees. Short questions are preferred (a CPU model answers them in seconds).
The code problems and the few exact / normalised / judge questions are written here by hand.

    .venv/bin/python scripts/build_collect_examples.py
"""
from __future__ import annotations

import json
from pathlib import Path

from emafusion_core.data import load_builtin
from emafusion_core.judges.extract import extract_choice, extract_math

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "collect"

NUMERIC = "\n\nAnswer with the final number only."
CHOICE = "\n\nAnswer with the letter of the correct option only."
CODE = "\n\nReply with the Python function in a ```python code block, nothing else."

CODE_PROBLEMS = [
    ("code.add", "Write a Python function add(a, b) that returns the sum of a and b.",
     "assert add(2, 3) == 5\nassert add(-1, 1) == 0"),
    ("code.is_even", "Write a Python function is_even(n) that returns True when the integer n is even.",
     "assert is_even(4) is True\nassert is_even(7) is False\nassert is_even(0) is True"),
    ("code.reverse", "Write a Python function reverse(s) that returns the string s reversed.",
     "assert reverse('abc') == 'cba'\nassert reverse('') == ''"),
    ("code.square", "Write a Python function square(x) that returns x squared.",
     "assert square(3) == 9\nassert square(-2) == 4"),
    ("code.maximum", "Write a Python function maximum(xs) that returns the largest number of the list xs.",
     "assert maximum([1, 5, 3]) == 5\nassert maximum([-2, -7]) == -2"),
    ("code.count_vowels", "Write a Python function count_vowels(s) that returns how many of the letters of s "
     "are vowels (a, e, i, o, u; lower case).", "assert count_vowels('banana') == 3\nassert count_vowels('xyz') == 0"),
    ("code.factorial", "Write a Python function factorial(n) that returns n! for an integer n >= 0.",
     "assert factorial(0) == 1\nassert factorial(5) == 120"),
    ("code.first", "Write a Python function first(xs) that returns the first element of the list xs, or None "
     "when it is empty.", "assert first([4, 5]) == 4\nassert first([]) is None"),
]
SHORT = [  # (id, scorer, prompt, reference)
    ("short.capital-fr", "normalised", "What is the capital of France? Answer with the city name only.", "Paris"),
    ("short.capital-jp", "normalised", "What is the capital of Japan? Answer with the city name only.", "Tokyo"),
    ("short.yes", "exact", "Reply with exactly the word yes, in lower case, and nothing else.", "yes"),
    ("short.colour", "normalised", "What colour is the sky on a clear day? Answer in one word.", "blue"),
    *[(f"short.capital-{code}", "normalised", f"What is the capital of {country}? Answer with the city name only.", city)
      for code, country, city in (("it", "Italy", "Rome"), ("de", "Germany", "Berlin"), ("es", "Spain", "Madrid"),
                                  ("uk", "the United Kingdom", "London"), ("eg", "Egypt", "Cairo"),
                                  ("ru", "Russia", "Moscow"))],
    *[(f"short.sum-{a}-{b}", "numeric", f"What is {a} + {b}? Answer with the number only.", str(a + b))
      for a, b in ((2, 3), (7, 5), (10, 10), (6, 9), (12, 30), (100, 1))],
]
JUDGED = [
    ("judge.haiku", "Write one sentence that describes the sea."),
    ("judge.advice", "Give one short tip for sleeping well."),
]


def _agreed(replies, extract) -> str | None:
    answers = {extract(r) for r in replies}
    return answers.pop() if len(answers) == 1 and None not in answers else None


def _numeric(n: int) -> list[dict]:
    suite = load_builtin("zeroeval")
    q = suite.queries[suite.queries["benchmark"] == "gsm8k"]
    q = q.assign(length=q["question"].str.len()).sort_values(["length", "query_id"])
    ok = suite.outcomes[(suite.outcomes["score"] == 1) & suite.outcomes["response"].notna()]
    by_query = ok.groupby("query_id")["response"].apply(list)
    rows = []
    for row in q.itertuples():
        ref = _agreed(by_query.get(row.query_id, []), extract_math)
        if ref is not None:
            rows.append(dict(query_id=row.query_id, benchmark="gsm8k", scorer="numeric",
                             prompt=row.question + NUMERIC, reference=ref))
        if len(rows) == n:
            return rows
    raise SystemExit("not enough GSM8K questions with an agreed reference")


def _choice(n: int) -> list[dict]:
    suite = load_builtin("mmlupro")
    q = suite.queries.assign(length=suite.queries["question"].str.len()).sort_values(["length", "query_id"])
    ok = suite.outcomes[(suite.outcomes["score"] == 1) & suite.outcomes["response"].notna()]
    by_query = ok.groupby("query_id")["response"].apply(list)
    rows, subjects = [], {}
    for row in q.itertuples():
        if subjects.get(row.category, 0) >= max(2, n // 7):  # a spread of subjects, not the shortest one's
            continue
        ref = _agreed(by_query.get(row.query_id, []), extract_choice)
        if ref is not None:
            subjects[row.category] = subjects.get(row.category, 0) + 1
            rows.append(dict(query_id=row.query_id, benchmark="mmlu-pro", category=row.category, scorer="choice",
                             prompt=row.question + CHOICE, reference=ref))
        if len(rows) == n:
            return rows
    raise SystemExit("not enough MMLU-Pro questions with an agreed reference")


def _hand_written() -> tuple[list[dict], list[dict], list[dict]]:
    code = [dict(query_id=i, benchmark="code", scorer="code", prompt=p + CODE, tests=t) for i, p, t in CODE_PROBLEMS]
    short = [dict(query_id=i, benchmark="short", scorer=s, prompt=p, reference=r) for i, s, p, r in SHORT]
    judged = [dict(query_id=i, benchmark="open", scorer="judge", prompt=p) for i, p in JUDGED]
    return code, short, judged


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {path.relative_to(ROOT)}: {len(rows)} queries")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    numeric, choice = _numeric(36), _choice(36)
    code, short, judged = _hand_written()
    _write(OUT / "queries.jsonl", numeric + choice + code + short + judged)
    # the tests' 16: every scorer, the shortest prompts
    _write(OUT / "queries-small.jsonl", numeric[:5] + choice[:4] + code[:3] + short[:3] + judged[:1])


if __name__ == "__main__":
    main()
