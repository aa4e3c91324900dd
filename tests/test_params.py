"""A notebook's parameters are checked in its first cell: a bad value fails at once, naming the parameter."""
from __future__ import annotations

import pytest

from emafusion_core import params
from emafusion_core.params import ParameterError


def test_suites_from_a_list_json_text_or_one_name():
    assert params.suite_names(["routerbench", "zeroeval"]) == ["routerbench", "zeroeval"]
    assert params.suite_names('["routerbench"]') == ["routerbench"]  # papermill -p suites '["routerbench"]'
    assert params.suite_names("routerbench") == ["routerbench"]
    with pytest.raises(ParameterError, match="suites: not a JSON list"):
        params.suite_names('["routerbench"')  # a broken list fails here, not as the unknown suite '[' later
    with pytest.raises(ParameterError, match="suites: unknown suite 'nope'.*routerbench"):
        params.suite_names(["nope"])


@pytest.mark.parametrize("bad", [-5, 0, float("nan"), float("inf"), "abc", True, None])
def test_a_budget_must_be_a_positive_finite_number(bad):
    with pytest.raises(ParameterError, match="budget_usd: expected a positive"):
        params.positive_number(bad, "budget_usd")
    assert params.positive_number("1e-3", "budget_usd") == 0.001


def test_budget_outside_the_grid_is_clamped_with_a_notice(capsys):
    assert params.clamp_budget(1e-9, 1e-4, 1e-2) == 1e-4
    assert "outside the calibrated grid" in capsys.readouterr().out
    assert params.clamp_budget(5e-3, 1e-4, 1e-2) == 5e-3 and capsys.readouterr().out == ""


def test_knob_values_as_a_tuple_text_or_list():
    names = ["tau_fam", "tau_c", "cost_weight", "tau_j"]
    assert params.knob_values("(0.8, 0.75, 0.05, 0.7)", names) == (0.8, 0.75, 0.05, 0.7)
    assert params.knob_values([0.8, 0.75, 0.05, 0.7], names) == (0.8, 0.75, 0.05, 0.7)
    assert params.knob_values(None, names) is None
    with pytest.raises(ParameterError, match="knob: expected 4 numbers"):
        params.knob_values("(0.8, 0.75)", names)


def test_outputs_stay_inside_the_repository(tmp_path):
    inside = params.output_dir("build/test-params-out")
    assert inside == (params.ROOT / "build" / "test-params-out").resolve() and inside.is_dir()
    with pytest.raises(ParameterError, match="out_dir: .* is outside the repository"):
        params.output_dir("../figures")  # from the repository root this would leave it
    with pytest.raises(ParameterError, match="outside the repository"):
        params.output_dir(str(tmp_path))


def test_seeds_are_non_negative_integers():
    assert params.seed_list("[0, 1]") == [0, 1]
    with pytest.raises(ParameterError, match="seeds: seeds are integers"):
        params.seed_list([0, 1.5])
