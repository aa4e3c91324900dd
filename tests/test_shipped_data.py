"""The shipped suites hold what data/SOURCE.md says, and match the raw files' statistics."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from emafusion_core.evaluation import models_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _acc(table, benchmark, model):
    row = table[(table["benchmark"] == benchmark) & (table["model"] == model)]
    assert len(row) == 1, (benchmark, model)
    return float(row["accuracy"].iloc[0])


def test_routerbench_counts_after_cleaning(routerbench):
    counts = routerbench.queries["benchmark"].value_counts().to_dict()
    assert counts == {"arc-challenge": 1470, "winogrande": 1267, "mbpp": 427}
    assert len(routerbench.models) == 11
    assert routerbench.scores.notna().all().all()  # the 14 split pairs are merged, not dropped
    assert (routerbench.outcomes["cost_source"] == "recorded").all()


def test_merged_arc_pair_keeps_gpt35_score_and_row_a_cost(routerbench):
    # arc-challenge.val.19 was split across two rows; GPT-3.5's score came only from row B.
    q = routerbench.outcomes[routerbench.outcomes["query_id"] == "arc-challenge.val.19"].set_index("model")
    assert q.loc["gpt-3.5-turbo-1106", "score"] in (0.0, 1.0)
    # costs come from row A (single prompt), so GPT-4's input is not doubled: about 10 USD/Mtok x tokens
    expected = (q.loc["gpt-4-1106-preview", "input_tokens"] * 10 + q.loc["gpt-4-1106-preview", "output_tokens"] * 30) / 1e6
    assert q.loc["gpt-4-1106-preview", "cost_usd"] == pytest.approx(expected, rel=1e-6)


def test_five_shot_prompts_are_flagged_and_stripped_for_routing(routerbench):
    q = routerbench.queries.set_index("benchmark")
    assert set(q.loc["arc-challenge", "n_shot"]) == {5} and set(q.loc["winogrande", "n_shot"]) == {5}
    assert set(q.loc["mbpp", "n_shot"]) == {0}
    arc = routerbench.queries[routerbench.queries["benchmark"] == "arc-challenge"]
    assert (arc["question"].str.len() < arc["prompt"].str.len() / 3).mean() > 0.95
    assert arc["question"].str.endswith("Answer:").all()


def test_models_table_matches_raw_statistics(routerbench, routellm):
    rb, rl = models_table(routerbench), models_table(routellm)
    # MBPP and Winogrande had no split rows, so these equal the raw files' means (SOURCE.md tables).
    assert _acc(rb, "mbpp", "gpt-4-1106-preview") == pytest.approx(0.686, abs=5e-4)
    assert _acc(rb, "winogrande", "gpt-4-1106-preview") == pytest.approx(0.859, abs=5e-4)
    assert _acc(rb, "winogrande", "mistralai/mixtral-8x7b-chat") == pytest.approx(0.679, abs=5e-4)
    assert _acc(rl, "gsm8k", "gpt-4-1106-preview") == pytest.approx(0.857, abs=5e-4)
    assert _acc(rl, "gsm8k", "mistralai/Mixtral-8x7B-Instruct-v0.1") == pytest.approx(0.638, abs=5e-4)
    # MT-Bench: mean GPT-4 judge rating 9.23 (GPT-4) and 8.34 (Mixtral) out of 10
    assert _acc(rl, "mt-bench", "gpt-4-1106-preview") == pytest.approx(0.923, abs=5e-4)
    assert _acc(rl, "mt-bench", "mistralai/Mixtral-8x7B-Instruct-v0.1") == pytest.approx(0.834, abs=5e-4)
    gpt4 = rb[(rb["benchmark"] == "all") & (rb["model"] == "gpt-4-1106-preview")].iloc[0]
    assert gpt4["usd_per_query"] * gpt4["queries"] == pytest.approx(15.86753, abs=1e-4)
    assert gpt4["cost_estimated"] == False  # noqa: E712
    assert rl["cost_estimated"].all()


def test_routellm_cleaning(routellm):
    q = routellm.queries
    assert q["benchmark"].value_counts().to_dict() == {"mmlu": 13772, "gsm8k": 1319, "mt-bench": 80}
    assert not (q["category"] == "high_school_mathematics").any()  # the GPT-4 extraction defect
    assert q.loc[q["benchmark"] == "mmlu", "category"].nunique() == 56
    assert int(q["contaminated"].sum()) == 5 + 12 + 8
    assert (routellm.outcomes["cost_source"] == "estimated").all()
    assert len(routellm.judgments) == 320 and routellm.judgments["rating"].between(1, 10).all()


def test_build_report_records_the_cost_estimate_check():
    report = json.loads((ROOT / "data" / "build_report.json").read_text())
    check = report["cost_estimate_check_on_routerbench"]
    for model in ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"):
        assert check[model]["ratio_of_totals"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present (maintainers only)")
def test_data_is_what_the_build_script_makes(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    shutil.copy(ROOT / "data" / "prices.csv", out / "prices.csv")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_data.py"), "--shared", str(SHARED),
                    "--out", str(out)], check=True, capture_output=True)
    for suite in ("routerbench", "routellm"):
        for table in ("queries", "outcomes"):
            pd.testing.assert_frame_equal(pd.read_parquet(out / suite / f"{table}.parquet"),
                                          pd.read_parquet(ROOT / "data" / suite / f"{table}.parquet"))
    assert (out / "build_report.json").read_text() == (ROOT / "data" / "build_report.json").read_text()
