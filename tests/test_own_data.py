"""A user's own suite (CSV, no responses, no taxonomy labels, benchmark names in mixed case) goes through
`emafusion data check` and `emafusion eval` as the README writes them; what will be weak is warned about, and
what cannot run is reported unavailable instead of crashing the comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from suite_support import tiny_tables, user_style_tables, write_suite
from emafusion_core.cli import main
from emafusion_core.data import DataValidationError, load_suite
from emafusion_core.data.check import identical_price_groups, label_coverage, resolve_suite, suite_warnings
from emafusion_core.evaluation import Harness, format_table, models_table, seed_metrics, summarise
from emafusion_core.evaluation.emafusion import emafusion_policies
from emafusion_core.evaluation.harness import default_policies
from emafusion_core.features import HashingEncoder
from emafusion_core.taxonomy import RuleLabeller, default_rules, default_taxonomy


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data/ folder holding user suites, as EMAFUSION_DATA (where names are looked up)."""
    base = tmp_path / "data"
    write_suite(base / "mysuite", *user_style_tables())
    write_suite(base / "flat", *user_style_tables(equal_prices=True))
    write_suite(base / "known", *user_style_tables(benchmarks=("GSM8K", "ARC_Challenge")))
    monkeypatch.setenv("EMAFUSION_DATA", str(base))
    return base


# ---- data check ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["path", "name"])
def test_data_check_takes_a_path_or_a_suite_name_and_warns_about_missing_labels(data_dir, by, capsys):
    target = str(data_dir / "mysuite") if by == "path" else "mysuite"
    assert main(["data", "check", target]) == 0
    out = capsys.readouterr().out
    assert "ok: Suite('mysuite'" in out
    assert "taxonomy labels on the fit split (seed 0): 0 of" in out
    assert "warning: no fit query has taxonomy labels" in out and "unavailable" in out
    assert "no labelling rule covers benchmark(s) ['Legal_QA', 'Support-Tickets']" in out


def test_data_check_of_an_unknown_name_lists_the_known_suites(data_dir, capsys):
    assert main(["data", "check", "nosuch"]) == 1
    err = capsys.readouterr().err
    assert "unknown suite 'nosuch'" in err and "mysuite" in err


def test_data_check_warns_about_identical_prices_and_no_cost_axis(data_dir, capsys):
    assert main(["data", "check", "flat"]) == 0
    out = capsys.readouterr().out
    assert "models with identical prices: large-c, mid-b, small-a" in out
    assert "no budget axis" in out and "accuracy only" in out


def test_rules_match_benchmark_names_case_and_punctuation_insensitively(data_dir):
    cov = label_coverage(resolve_suite("known"))
    assert cov.labelled == cov.n_fit > 0 and cov.rules == cov.n_fit and cov.unmatched_benchmarks == []
    labeller = RuleLabeller(default_taxonomy(), default_rules())
    q = pd.DataFrame({"benchmark": ["GSM8K", "Arc Challenge", "MMLU-Pro", "MMLU", "mt_bench", "nope"],
                      "category": ["", "", "Computer_Science", "High School Mathematics", "Writing", ""],
                      "answer_format": ["number", "multiple_choice", "multiple_choice", "multiple_choice",
                                        "free_text", "free_text"]})
    labels = labeller.label(q)
    assert labels.iloc[:5].notna().all(axis=None) and labels.iloc[5].isna().all()
    assert labels.loc[2, "domain"] == "software" and labels.loc[3, "complexity"] == "medium"
    assert labels.loc[4, "task_type"] == "writing"


def test_own_label_columns_are_counted_as_such(tmp_path):
    q, o, m = user_style_tables()
    q["task_type"], q["complexity"], q["domain"], q["io_format"] = "knowledge_qa", "medium", "everyday", "free_text"
    cov = label_coverage(load_suite(write_suite(tmp_path / "own", q, o, m)))
    assert cov.own == cov.n_fit and cov.rules == 0 and cov.none == 0
    assert not any("taxonomy labels" in w for w in suite_warnings(load_suite(tmp_path / "own")))


def test_identical_prices_use_the_price_columns_when_given():
    q, o, m = tiny_tables()
    m["input_usd_per_mtok"], m["output_usd_per_mtok"] = [1.0, 1.0], [2.0, 2.0]
    from emafusion_core.data import Suite
    assert identical_price_groups(Suite.from_tables("t", q, o, m)) == [["cheap", "dear"]]


# ---- error locations: CSV line numbers, parquet rows ----------------------------------------------------------
def test_csv_errors_give_the_files_line_number_and_parquet_errors_the_row(tmp_path):
    q, o, m = tiny_tables()
    o.loc[4, "score"] = 2.0
    write_suite(tmp_path / "csv", q, o, m)
    with pytest.raises(DataValidationError) as err:
        load_suite(tmp_path / "csv")
    assert err.value.row == 4 and err.value.line == 6 and "line 6" in str(err.value)
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, df in (("queries", q), ("outcomes", o), ("models", m)):
        df.to_parquet(folder / f"{name}.parquet", index=False)
    with pytest.raises(DataValidationError) as err:
        load_suite(folder)
    assert err.value.line is None and "row 4" in str(err.value) and "line" not in str(err.value)


def test_a_bad_price_is_located_on_its_own_line_even_after_empty_prices(tmp_path):
    q, o, m = tiny_tables()
    m["input_usd_per_mtok"] = [np.nan, -1.0]
    with pytest.raises(DataValidationError) as err:
        load_suite(write_suite(tmp_path / "s", q, o, m))
    assert err.value.row == 1 and "line 3" in str(err.value)


# ---- evaluation ---------------------------------------------------------------------------------------------
def test_eval_on_a_suite_without_labels_runs_the_baselines_and_the_learned_router(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eval", "--suite", "mysuite", "--seeds", "0", "--encoder", "hashing", "--budgets", "6",
                 "--n-boot", "20", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for variant in ("emafusion:taxonomy", "emafusion:hybrid", "emafusion:hybrid+cascade"):
        assert f"unavailable: {variant}:" in text
    summary = pd.read_csv(out / "baselines_mysuite_summary.csv")
    ran = set(summary.loc[summary["n_seeds"] > 0, "policy"])
    assert {"knn", "routellm", "automix", "zero-router", "emafusion:learned", "emafusion:learned+cascade"} <= ran
    marked = summary.set_index("policy").loc["emafusion:hybrid+cascade"]
    assert marked["n_seeds"] == 0 and str(marked["note"]).startswith("unavailable:")
    points = pd.read_csv(out / "baselines_mysuite.csv")
    assert not points["policy"].str.startswith("emafusion:hybrid").any()


def test_eval_takes_a_suite_path_too(data_dir, tmp_path):
    assert main(["eval", "--suite", str(data_dir / "known"), "--seeds", "0", "--encoder", "hashing",
                 "--budgets", "4", "--n-boot", "10", "--no-emafusion", "--out", str(tmp_path)]) == 0


def test_equal_prices_are_evaluated_on_accuracy_with_a_notice(data_dir, tmp_path, capsys):
    assert main(["eval", "--suite", "flat", "--seeds", "0", "--encoder", "hashing", "--n-boot", "10",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "no budget axis" in text and "accuracy only" in text
    summary = pd.read_csv(tmp_path / "baselines_flat_summary.csv")
    ran = summary[summary["n_seeds"] > 0]
    assert ran["aiq"].isna().all() and ran["best_accuracy"].between(0, 1).all()
    assert ran["note"].str.startswith("accuracy only").all()


def test_harness_on_a_narrow_cost_range_does_not_crash(data_dir):
    q, o, m = user_style_tables(equal_prices=True)
    o["cost_usd"] = o["cost_usd"] * (1 + 1e-4 * (o["model"] == "large-c"))  # hi > lo, but by 0.01 %
    from emafusion_core.data import Suite
    suite = Suite.from_tables("narrow", q, o, m)
    result = Harness(suite, HashingEncoder(), seeds=[0], n_budgets=5,
                     policies=lambda s, sc: default_policies(s, sc) + emafusion_policies()).run()
    assert any("no budget axis" in n for n in result.notices)
    assert set(result.unavailable) == {"emafusion:taxonomy", "emafusion:hybrid", "emafusion:taxonomy+cascade",
                                       "emafusion:hybrid+cascade"}
    summary = summarise(seed_metrics(result, n_boot=10))
    assert summary["aiq"].isna().all() and "n/a" in format_table(summary)


def test_a_policy_at_the_dearest_cost_has_its_aiq_explained_not_zero(data_dir):
    suite = resolve_suite("mysuite")
    result = Harness(suite, None, seeds=[0], n_budgets=5).run()
    summary = summarise(seed_metrics(result, n_boot=10)).set_index("policy")
    dearest = f"single:{suite.model_names[-1]}"
    assert np.isnan(summary.loc[dearest, "aiq"]) and "AIQ not defined" in summary.loc[dearest, "note"]
    cheapest = f"single:{suite.model_names[0]}"
    assert summary.loc[cheapest, "aiq"] > 0 and summary.loc[cheapest, "note"] == ""
    table = format_table(summary.reset_index())
    assert "n/a" in table and "AIQ not defined" in table


# ---- models table ---------------------------------------------------------------------------------------------
def test_models_table_of_a_user_suite_holds_that_suite_only(data_dir):
    table = models_table(resolve_suite("mysuite"), include_extra=True)
    assert set(table["suite"]) == {"mysuite"}
    assert set(models_table(resolve_suite("mysuite"))["suite"]) == {"mysuite"}


def test_routerbench_extra_rows_are_opt_in(routerbench):
    assert set(models_table(routerbench)["suite"]) == {"routerbench"}
    assert set(models_table(routerbench, include_extra=True)["suite"]) == {"routerbench", "routerbench_extra"}
