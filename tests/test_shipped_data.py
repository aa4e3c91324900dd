"""The shipped suites hold what data/SOURCE.md says, and match the raw files' statistics."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emafusion_core.data import BUILTIN_SUITES, gpt4_class_model, load_builtin, with_hidden_reasoning
from emafusion_core.evaluation import models_table
from emafusion_core.judges.extract import extract_answer
from emafusion_core.taxonomy.labelling import RuleLabeller
from emafusion_core.taxonomy.schema import default_rules, default_taxonomy

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GPT4_CLASS = {"routerbench": "gpt-4-1106-preview", "routellm": "gpt-4-1106-preview",
              "zeroeval": "gpt-4o-2024-08-06", "mmlupro": "gemini-1.5-pro-002"}


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


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_every_builtin_suite_loads_validates_and_names_its_gpt4_class_model(name):
    suite = load_builtin(name)  # validates: schema, ranges, an outcome for every (query, model)
    assert suite.scores.notna().all().all() and (suite.costs >= 0).all().all()
    assert gpt4_class_model(name) == GPT4_CLASS[name]
    assert suite.models["gpt4_class"].sum() == 1
    labels = RuleLabeller(default_taxonomy(), default_rules()).label(suite.queries)
    if name != "routerbench":  # every query of the new suites (and routellm) is covered by a rule
        assert labels.notna().all().all(), labels[labels.isna().any(axis=1)].head()


def test_zeroeval_counts_pool_and_costs():
    suite = load_builtin("zeroeval")
    assert suite.queries["benchmark"].value_counts().to_dict() == {"gsm8k": 1319, "cruxeval": 800, "math-l5": 721}
    assert len(suite.models) >= 16 and {"o1-mini-2024-09-12", "claude-3-opus-20240229",
                                        "Meta-Llama-3.1-8B-Instruct"} <= set(suite.models["model"])
    assert set(suite.queries["answer_format"]) == {"math", "literal"}
    assert (suite.outcomes["cost_source"] == "estimated").all() and suite.outcomes["response"].notna().all()
    assert suite.models.set_index("model")["hidden_reasoning"].to_dict()["o1-mini-2024-09-12"]
    # the sensitivity variant: o1-mini's output tokens x4, everything else unchanged
    x4 = with_hidden_reasoning(suite, 4.0)
    o1 = suite.outcomes["model"] == "o1-mini-2024-09-12"
    prices = suite.models.set_index("model").loc["o1-mini-2024-09-12"]
    expected = (suite.outcomes.loc[o1, "input_tokens"] * prices["input_usd_per_mtok"]
                + 4 * suite.outcomes.loc[o1, "output_tokens"] * prices["output_usd_per_mtok"]) / 1e6
    np.testing.assert_allclose(x4.outcomes.loc[o1, "cost_usd"], expected, rtol=1e-9)
    np.testing.assert_array_equal(x4.outcomes.loc[~o1, "cost_usd"], suite.outcomes.loc[~o1, "cost_usd"])
    np.testing.assert_array_equal(x4.outcomes["score"], suite.outcomes["score"])


def test_zeroeval_scores_are_what_the_shared_parser_reads():
    """The shipped scores are the scorer's, and the scorer is extract.py (a sample: replies re-extracted)."""
    suite = load_builtin("zeroeval")
    report = json.loads((ROOT / "data" / "build_report.json").read_text())["zeroeval"]
    acc = suite.outcomes.merge(suite.queries[["query_id", "benchmark"]]).groupby(["model", "benchmark"])["score"].mean()
    for model, by_bench in report["scorer_check"].items():
        for bench, check in by_bench.items():
            assert acc[(model, bench)] * 100 == pytest.approx(check["ours"], abs=0.006)
            # our reading of ZeroEval's own string rule reproduces its published summary
            assert abs(check["string_rule_deviation_pt"]) <= 0.3, (model, bench)
    o = suite.outcomes.merge(suite.queries[["query_id", "answer_format"]]).sample(300, random_state=0)
    has_answer = [extract_answer(f, r) is not None for f, r in zip(o["answer_format"], o["response"])]
    assert all(h for h, s in zip(has_answer, o["score"]) if s == 1.0)  # a correct reply always has an answer


def test_mmlupro_counts_and_choices():
    suite = load_builtin("mmlupro")
    report = json.loads((ROOT / "data" / "build_report.json").read_text())["mmlupro"]
    assert "DeepSeek-Coder-V2" not in set(suite.models["model"]) and len(suite.models) == 14
    assert suite.queries["category"].nunique() == 14 and len(suite.queries) == report["queries"]
    assert len(suite.queries) > 11_900
    assert set(suite.queries["answer_format"]) == {"multiple_choice"} and set(suite.queries["n_shot"]) == {5}
    # extract_choice (the judges' reader) reads the benchmark's own letter from most replies
    assert min(report["extract_choice_agrees_with_source_pred"].values()) > 0.85


def test_models_tables_are_the_old_ones_plus_the_gpt4_class_column():
    for name in ("routerbench", "routellm"):
        models = pd.read_csv(ROOT / "data" / name / "models.csv")
        assert list(models.columns)[-1] == "gpt4_class"
        assert models.loc[models["gpt4_class"], "model"].tolist() == ["gpt-4-1106-preview"]


def test_prices_for_estimated_costs_name_their_source_and_date():
    prices = pd.read_csv(ROOT / "data" / "prices.csv")
    assert prices[["source", "date", "status"]].notna().all().all()
    assert set(prices["status"]) <= {"verified", "unverified"}
    report = json.loads((ROOT / "data" / "build_report.json").read_text())
    for name in ("zeroeval", "mmlupro"):
        for model, row in report[name]["prices"].items():
            assert row["source"] and row["date"] and row["status"] in ("verified", "unverified"), model


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present (maintainers only)")
def test_data_is_what_the_build_script_makes(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    shutil.copy(ROOT / "data" / "prices.csv", out / "prices.csv")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_data.py"), "--shared", str(SHARED),
                    "--out", str(out)], check=True, capture_output=True)
    for suite in ("routerbench", "routellm", "zeroeval", "mmlupro"):
        for table in ("queries", "outcomes"):
            pd.testing.assert_frame_equal(pd.read_parquet(out / suite / f"{table}.parquet"),
                                          pd.read_parquet(ROOT / "data" / suite / f"{table}.parquet"))
        assert (out / suite / "models.csv").read_text() == (ROOT / "data" / suite / "models.csv").read_text()
    assert (out / "build_report.json").read_text() == (ROOT / "data" / "build_report.json").read_text()


def test_shipped_embeddings_cover_every_builtin_suite_one_shard_each():
    from emafusion_core.features import EmbeddingStore, MiniLMEncoder
    from emafusion_core.features.cache import text_key

    encoder_id = MiniLMEncoder().encoder_id  # no model load: the id only
    store = EmbeddingStore(ROOT / "data" / "embeddings")
    shards = {"shipped": ("routerbench", "routellm"), "zeroeval": ("zeroeval",), "mmlupro": ("mmlupro",)}
    for shard, suites in shards.items():
        have = store.read_shard(encoder_id, shard)  # the routerbench/routellm file is the one shipped before
        for name in suites:
            missing = {text_key(t) for t in load_builtin(name).queries["question"]} - set(have)
            assert not missing, f"{len(missing)} {name} questions not in shard-{shard}.npz"
        assert next(iter(have.values())).shape == (384,)
