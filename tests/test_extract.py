"""The one answer parser: what the zeroeval scorer and the peer-agreement judges both read from a reply."""
from __future__ import annotations

import pytest

from emafusion_core.judges.extract import (agreement, canonical_literal, extract_answer_field, extract_choice,
                                           extract_literal, extract_math, extract_number, number_in_answer,
                                           reference_number, score_answer)


def zeroeval_reply(answer: str, reasoning: str = "work") -> str:
    return f'```json\n{{\n    "reasoning": "{reasoning}",\n    "answer": {answer}\n}}\n```'


@pytest.mark.parametrize("text, letter", [
    ("The answer is (J).", "J"), ("so the answer is (F)", "F"), ("(H) because", "H"), ("G.", "G"),
    ("I", "I"), ("I do", None), ("Option (A) is wrong, B too. The answer is (C).", "C"),
    ("A\n", "A"), ("the answer is a bit unclear", "A"),
])
def test_extract_choice_reads_ten_options(text, letter):
    assert extract_choice(text) == letter


@pytest.mark.parametrize("answer, number", [
    ("3/4", "0.75"), ("-3/4", "-0.75"), ("(1)/(4)", "0.25"), ("\\frac{3}{4}", "0.75"), ("-\\dfrac{1}{2}", "-0.5"),
    ("$1,250", "1250"), ("18 dollars", "18"), ("x = 5", "5"), ("\\sqrt{2}", "2"), ("none", None), ("1/0", "1"),
])
def test_number_in_answer_follows_zeroeval(answer, number):
    # ZeroEval: strip $ and commas, a fraction a/b becomes its decimal value, then the first number
    assert number_in_answer(answer) == number


def test_number_in_answer_never_evaluates_text():
    assert number_in_answer("__import__('os').getcwd()") is None
    assert number_in_answer("2**10") == "2"  # parsed, not computed


@pytest.mark.parametrize("text, number", [
    ("so 9 * 2 = 18\n#### 18", "18"), ("she has 3/4 of the cake left", "0.75"),
    ("The final answer is $\\boxed{-7}$.", "-7"), ('{"reasoning": "r", "answer": "42"}', "42"),
])
def test_extract_number_formats(text, number):
    assert extract_number(text) == number


def test_extract_math_reads_the_json_answer_field_only():
    assert extract_math(zeroeval_reply('"18"')) == "18"
    assert extract_math(zeroeval_reply("18")) == "18"  # a JSON number
    assert extract_math('{"reasoning": "broken \\q json", "answer": "7"}') == "7"  # lenient fallback
    assert extract_math("answer: 12") == "12"  # no quotes on the key either
    assert extract_math("I think it is 12.") is None  # no answer field: no answer (ZeroEval scores 0)
    assert extract_math("... so the result is $\\boxed{-3}$") == "-3"  # a reply ending on a boxed answer


def test_answer_field_is_the_first_complete_json_object():
    text = 'scratch {"answer": "1"} then {"answer": "2"}'
    assert extract_answer_field(text) == "1"
    assert extract_answer_field('{"reasoning": "x", "answer": [1, 2]}') == [1, 2]


def test_reference_numbers():
    assert reference_number("# 18") == "18" and reference_number("\\frac{1}{2}") == "0.5"
    assert score_answer("math", zeroeval_reply('"0.5"'), "\\frac{1}{2}") == 1.0
    assert score_answer("math", zeroeval_reply('"1/2"'), "0.5") == 1.0
    assert score_answer("math", zeroeval_reply('"$1,000"'), "# 1000") == 1.0
    assert score_answer("math", "no json here 1000", "# 1000") == 0.0


@pytest.mark.parametrize("answer, reference, correct", [
    ('"[1, 2]"', "[1, 2]", True), ('"[1,2]"', "[1, 2]", True), ('" [1, 2]"', "[1, 2]", True),
    ("[1, 2]", "[1, 2]", True),  # a JSON list is its Python value
    ('"[\\"a\\", \\"b\\"]"', "['a', 'b']", True),  # quote style does not matter in a literal
    ('"(1, 2)"', "[1, 2]", False),  # a tuple is not a list
    ('"abc"', "'abc'", True), ('"\'abc\'"', "'abc'", True),  # bare or quoted string
    ('"816"', "'816'", True),  # inside a JSON string, 816 may be the string '816'
    ('"6,8,8"', "'6,8,8'", True),  # a bare tuple reads as text
    ('"abc  "', "'abc  '", True), ('"abc"', "'abc  '", False),  # spaces inside a string count
    ('"{1: 2, 3: 4}"', "{3: 4, 1: 2}", True), ('"True"', "True", True), ('"1"', "True", False),
    ('"a\\nb"', "'a\\nb'", True),  # a line break in the JSON string is the \n of the literal
    ('"     7     "', "'     7     '", True), ('"7"', "'     7     '", False),  # a spaced number is text
    ('"\'R, R!!!"', "'R, R!!!'", True),  # a stray quote at an end does not matter (ZeroEval strips them)
    ('"t\\\\nZA"', "'t\\nZA'", True),  # an escaped \n written in the answer is the literal's \n
])
def test_literal_scoring(answer, reference, correct):
    assert score_answer("literal", zeroeval_reply(answer), reference) == float(correct)


def test_literals_are_parsed_never_executed(tmp_path):
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    assert extract_literal(zeroeval_reply('"' + payload.replace("'", "\\'") + '"')) is not None
    assert not marker.exists()
    assert canonical_literal("[" * 5000 + "]" * 5000) is not None  # too deep: compared as text, no crash


def test_agreement_uses_the_same_parser_as_scoring():
    a, b = zeroeval_reply('"3/4"'), zeroeval_reply('"0.75"')
    assert agreement("math", a, b) == 1.0
    assert agreement("math", a, "no answer") is None
    assert agreement("literal", zeroeval_reply('"[1,2]"'), zeroeval_reply("[1, 2]")) == 1.0
    assert agreement("multiple_choice", "The answer is (J).", "J") == 1.0
    assert agreement("number", "#### 18", "the total is 17") == 0.0
