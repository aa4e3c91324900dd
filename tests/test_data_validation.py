"""Bad input gets an error naming the file, the column and the first offending row."""
from __future__ import annotations

import pandas as pd
import pytest

from suite_support import tiny_tables
from emafusion_core.data import DataValidationError, Suite, load_suite, save_suite


def _suite_dir(tmp_path, queries, outcomes, models, fmt="csv"):
    folder = tmp_path / "mysuite"
    folder.mkdir()
    for name, df in (("queries", queries), ("outcomes", outcomes), ("models", models)):
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_valid_user_suite_loads_from_csv_or_parquet(tmp_path, fmt):
    folder = _suite_dir(tmp_path, *tiny_tables(), fmt=fmt)
    suite = load_suite(folder)
    assert suite.name == "mysuite"
    assert len(suite.queries) == 6 and suite.model_names == ["cheap", "dear"]
    # optional columns get their documented defaults
    assert (suite.queries["question"] == suite.queries["prompt"]).all()
    assert set(suite.queries["answer_format"]) == {"free_text"}
    assert suite.scores.shape == (6, 2)


def test_missing_column_names_file_and_column(tmp_path):
    q, o, m = tiny_tables()
    folder = _suite_dir(tmp_path, q, o.drop(columns=["cost_usd"]), m)
    with pytest.raises(DataValidationError) as err:
        load_suite(folder)
    assert "outcomes.csv" in str(err.value) and "'cost_usd'" in str(err.value)
    assert "missing required column" in str(err.value)


def test_score_outside_unit_interval_names_first_row(tmp_path):
    q, o, m = tiny_tables()
    o.loc[5, "score"] = 1.5
    o.loc[7, "score"] = -1
    folder = _suite_dir(tmp_path, q, o, m)
    with pytest.raises(DataValidationError) as err:
        load_suite(folder)
    e = err.value
    assert (e.column, e.row) == ("score", 5)
    assert "outcomes.csv" in e.source and "1.5" in str(e)


def test_negative_cost_is_rejected(tmp_path):
    q, o, m = tiny_tables()
    o.loc[3, "cost_usd"] = -0.01
    with pytest.raises(DataValidationError) as err:
        load_suite(_suite_dir(tmp_path, q, o, m))
    assert (err.value.column, err.value.row) == ("cost_usd", 3)


def test_non_numeric_score_is_rejected():
    q, o, m = tiny_tables()
    o["score"] = o["score"].astype(object)
    o.loc[2, "score"] = "yes"
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert (err.value.column, err.value.row) == ("score", 2) and "not a number" in str(err.value)


def test_duplicate_query_id_is_rejected():
    q, o, m = tiny_tables()
    q.loc[4, "query_id"] = "q1"
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert err.value.row == 4 and "duplicate" in str(err.value)


def test_duplicate_outcome_row_is_rejected():
    q, o, m = tiny_tables()
    o = pd.concat([o, o.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert err.value.row == len(o) - 1


def test_unknown_model_name_is_rejected():
    q, o, m = tiny_tables()
    o.loc[1, "model"] = "dear-typo"
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert (err.value.column, err.value.row) == ("model", 1) and "dear-typo" in str(err.value)


def test_query_without_every_model_is_rejected():
    q, o, m = tiny_tables()
    o = o.drop(index=3).reset_index(drop=True)  # q1 has no 'dear' outcome
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert "q1" in str(err.value) and "dear" in str(err.value)


def test_unknown_answer_format_is_rejected():
    q, o, m = tiny_tables()
    q["answer_format"] = "multiple_choice"
    q.loc[2, "answer_format"] = "multiple-choice"
    with pytest.raises(DataValidationError) as err:
        Suite.from_tables("t", q, o, m)
    assert (err.value.column, err.value.row) == ("answer_format", 2)


def test_unreadable_file_is_a_clear_error(tmp_path):
    q, o, m = tiny_tables()
    folder = _suite_dir(tmp_path, q, o, m)
    (folder / "outcomes.csv").unlink()
    (folder / "outcomes.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError) as err:
        load_suite(folder)
    assert "outcomes.parquet" in str(err.value) and "cannot be read" in str(err.value)


def test_missing_table_is_named(tmp_path):
    q, o, m = tiny_tables()
    folder = _suite_dir(tmp_path, q, o, m)
    (folder / "models.csv").unlink()
    with pytest.raises(DataValidationError, match="missing table 'models'"):
        load_suite(folder)


def test_save_then_load_round_trips(tmp_path, tiny_suite):
    save_suite(tiny_suite, tmp_path / "tiny")
    again = load_suite(tmp_path / "tiny")
    pd.testing.assert_frame_equal(again.scores, tiny_suite.scores)
    pd.testing.assert_frame_equal(again.queries, tiny_suite.queries)


# ---- strict types and shapes (issue 15, item 6) ---------------------------------------------------------


def _check_fails(tmp_path, capsys, q, o, m, *needles, fmt="csv"):
    """`emafusion data check` refuses the folder with one line naming what is wrong."""
    from emafusion_core.cli import main

    folder = _suite_dir(tmp_path, q, o, m, fmt=fmt)
    assert main(["data", "check", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("invalid: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_contaminated_written_no_in_a_csv_is_false(tmp_path):
    q, o, m = tiny_tables(30)
    q["contaminated"] = ["no"] * 29 + ["YES"]
    suite = load_suite(_suite_dir(tmp_path, q, o, m))
    assert suite.queries["contaminated"].tolist() == [False] * 29 + [True]
    q["contaminated"] = ["False", "true", "0", "1", " No "] * 6
    (tmp_path / "again").mkdir()
    suite = load_suite(_suite_dir(tmp_path / "again", q, o, m))
    assert suite.queries["contaminated"].tolist() == [False, True, False, True, False] * 6


def test_contaminated_maybe_is_refused_naming_file_column_and_line(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    q["contaminated"] = ["no"] * 3 + ["maybe"] + ["no"] * 26
    _check_fails(tmp_path, capsys, q, o, m, "queries.csv", "'contaminated'", "line 5", "'maybe'", "true/false")


def test_a_fractional_n_shot_is_refused(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    q["n_shot"] = [0.0] * 2 + [2.7] + [0.0] * 27
    _check_fails(tmp_path, capsys, q, o, m, "queries.csv", "'n_shot'", "line 4", "not an integer")


def test_a_zero_row_suite_is_refused(tmp_path, capsys):
    q, o, m = tiny_tables()
    _check_fails(tmp_path, capsys, q.iloc[:0], o.iloc[:0], m, "queries.csv", "no queries")


def test_list_valued_query_ids_are_one_line_errors(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    q["query_id"] = [[f"q{i}"] for i in range(30)]
    _check_fails(tmp_path, capsys, q, o, m, "queries.parquet", "'query_id'", "row 0", "not a list", fmt="parquet")


def test_a_missing_outcome_names_the_outcomes_files_own_line(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    o = o[~((o["query_id"] == "q7") & (o["model"] == "dear"))]  # q7's other row is outcomes row 14: line 16
    _check_fails(tmp_path, capsys, q, o, m, "outcomes.csv", "line 16", "'q7'", "'dear'")
    q2, o2, m2 = tiny_tables(30)
    o2 = o2[o2["query_id"] != "q7"]  # no outcome at all: the queries file's line is named, as such
    (tmp_path / "b").mkdir()
    err = _check_fails(tmp_path / "b", capsys, q2, o2, m2, "queries.csv", "line 9", "'q7'", "no row in")
    assert "outcomes.csv" in err


def test_a_suite_whose_splits_leave_calibrate_or_test_empty_is_refused(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    q["contaminated"] = "yes"  # every query goes to fit
    _check_fails(tmp_path, capsys, q, o, m, "calibrate", "test", "contaminated")
    q, o, m = tiny_tables(2)  # two queries cannot fill three splits
    (tmp_path / "b").mkdir()
    _check_fails(tmp_path / "b", capsys, q, o, m, "empty")
