"""`emafusion collect` offline: the queries file, the scorers, the code sandbox, and a collection through the
real gateway over a scripted transport (failures as data, resume from the cache, nothing paid twice)."""
from __future__ import annotations

import json
import threading

import diskcache
import numpy as np
import pandas as pd
import pytest

import emafusion_core  # noqa: F401 - offline environment
from emafusion_core.cli import main
from emafusion_core.collect import (QueriesFileError, Sandbox, SandboxUnavailable, Scorer, collect, load_queries,
                                    parse_queries, write_collected)
from emafusion_core.collect import sandbox as sandbox_module
from emafusion_core.config import parse_config
from emafusion_core.data import load_suite
from emafusion_core.llm import RetryPolicy
from emafusion_core.system import make_client, pool_suite

FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).fillna("").astype(str)


# ---- the queries file --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, message", [
    ([{"query_id": "a", "prompt": "2+2?", "scorer": "fuzzy", "reference": "4"}], r"line 2, column 'scorer': unknown scorer 'fuzzy'"),
    ([{"query_id": "a", "prompt": "2+2?", "scorer": "numeric"}], r"line 2, column 'reference': scorer 'numeric' needs a reference"),
    ([{"query_id": "a", "prompt": "f?", "scorer": "code", "reference": ""}], r"column 'tests': scorer 'code' needs tests"),
    ([{"query_id": "a", "prompt": "x", "scorer": "exact", "reference": "x"}] * 2, r"line 3, column 'query_id': duplicate id 'a'"),
    ([{"query_id": "a", "prompt": " ", "scorer": "exact", "reference": "x"}], r"column 'prompt': empty prompt"),
    ([{"query_id": "a", "prompt": "x", "scorer": "exact", "reference": "x", "score": "1"}], r"unknown column\(s\) \['score'\]"),
    ([{"query_id": "a", "prompt": "x", "reference": "x"}], r"missing column 'scorer'"),
])
def test_a_malformed_queries_file_gets_one_line_naming_the_line_and_column(rows, message):
    with pytest.raises(QueriesFileError, match=message) as err:
        parse_queries(_table(rows), "q.csv")
    assert "\n" not in str(err.value)


def test_unreadable_files_say_so(tmp_path):
    (tmp_path / "q.txt").write_text("x")
    (tmp_path / "q.jsonl").write_text("[1, 2]\n")
    for path, message in ((tmp_path / "q.txt", "expected a .csv or .jsonl"), (tmp_path / "none.csv", "no such file"),
                          (tmp_path / "q.jsonl", "JSON object")):
        with pytest.raises(QueriesFileError, match=message):
            load_queries(path)


def test_references_and_scorers_stay_out_of_the_queries_table():
    qs = parse_queries(_table([{"query_id": "a", "prompt": "2+2?", "scorer": "numeric", "reference": "4"},
                               {"query_id": "b", "prompt": "f", "scorer": "code", "tests": "assert f() == 1",
                                "benchmark": "mine"}]))
    assert not {"reference", "tests", "scorer"} & set(qs.queries.columns)
    assert list(qs.queries["answer_format"]) == ["number", "code"]
    assert list(qs.queries["benchmark"]) == ["numeric", "mine"]  # the scorer when no benchmark is given
    assert list(qs.references["reference"]) == ["4", ""]


# ---- scorers ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scorer, response, reference, expected", [
    ("exact", " yes ", "yes", 1.0), ("exact", "Yes", "yes", 0.0),
    ("normalised", "The Paris.", "paris", 1.0), ("normalised", "Lyon", "Paris", 0.0),
    ("numeric", "so she makes $1,800 in total", "1800", 1.0), ("numeric", "about 17", "18", 0.0),
    ("numeric", "no idea", "18", 0.0),
    ("choice", "The answer is (C).", "C", 1.0), ("choice", "B", "C", 0.0),
])
def test_scorers_read_answers_with_the_projects_extraction(scorer, response, reference, expected):
    assert Scorer().score_one(scorer, response, reference, "").score == expected


def test_the_scorer_has_no_way_to_learn_the_model_name():
    import inspect

    for method in (Scorer.score_one, Scorer.score_many):
        assert "model" not in inspect.signature(method).parameters


def test_code_scoring_runs_the_tests_in_a_sandbox():
    box = Sandbox(wall_s=3, cpu_s=1, memory_mb=256)
    scorer = Scorer(sandbox=box)
    tests = "assert add(2, 3) == 5"
    assert scorer.score_one("code", "```python\ndef add(a, b):\n    return a + b\n```", "", tests).score == 1.0
    wrong = scorer.score_one("code", "```python\ndef add(a, b):\n    return a - b\n```", "", tests)
    assert wrong.score == 0.0 and "AssertionError" in wrong.detail
    assert scorer.score_one("code", "I would add them.", "", tests).score == 0.0  # no code at all
    # each limit alone (a wall clock far beyond the CPU limit, however loaded the machine; a sleep uses no CPU)
    assert Sandbox(wall_s=120, cpu_s=1).run("while True: pass", "").detail == "cpu limit"
    assert Sandbox(wall_s=1, cpu_s=60).run("import time\ntime.sleep(60)", "").detail == "timeout"
    assert "MemoryError" in box.run("x = bytearray(2 * 1024 ** 3)", "").detail


def test_sandboxed_code_sees_no_secret_no_network_and_only_its_scratch_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    box = Sandbox(wall_s=5)
    probe = ("import os, socket\n"
             "assert 'OPENAI_API_KEY' not in os.environ and 'PATH' not in os.environ, dict(os.environ)\n"
             "assert os.path.basename(os.getcwd()).startswith('emafusion-code-'), os.getcwd()\n"
             "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError as e:\n"
             "    assert e.errno == 101, e  # network unreachable: no interface at all, not a refused port\n"
             "else:\n    raise SystemExit('network reachable')\n")
    result = box.run(probe, "")
    assert result.passed, result.detail


def test_without_a_network_namespace_code_scoring_refuses_in_one_line(monkeypatch):
    sandbox_module._unshare_prefix.cache_clear()
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    try:
        with pytest.raises(SandboxUnavailable, match="refuses to run") as err:
            Scorer().check(["numeric", "code"])
        assert "\n" not in str(err.value)
        Scorer().check(["numeric", "choice"])  # no code query: nothing to refuse
    finally:
        sandbox_module._unshare_prefix.cache_clear()


# ---- a collection over a scripted provider ---------------------------------------------------------------
POOL = {"models": [
    {"name": "small", "litellm_model": "openai/fake", "api_base": "http://127.0.0.1:9/v1", "price": {"input": 1, "output": 2},
     "max_tokens": 16, "system_prompt": "Be terse."},
    {"name": "big", "litellm_model": "openai/fake", "api_base": "http://127.0.0.1:9/v1", "price": {"input": 10, "output": 30},
     "max_tokens": 32}], "fit": {"suite": "mine"}, "router": {"kind": "learned"}}
QUERIES = [{"query_id": f"n{i}", "prompt": f"What is {i} + {i}?", "scorer": "numeric", "reference": str(2 * i)}
           for i in range(12)] + \
          [{"query_id": f"c{i}", "prompt": f"Which letter? {i}", "scorer": "choice", "reference": "B"} for i in range(6)] + \
          [{"query_id": "code0", "prompt": "write add", "scorer": "code", "tests": "assert add(1, 2) == 3"},
           {"query_id": "open0", "prompt": "describe the sea", "scorer": "judge"}]


class Provider:
    """A scripted provider: answers from the prompt (the big model is right more often), truncates one reply,
    and fails every call while `down` is set. Counts the calls it answered, per request."""

    def __init__(self):
        self.answered: list[str] = []
        self.down = False
        self.lock = threading.Lock()

    async def __call__(self, **kw):
        from litellm.exceptions import APIConnectionError

        if self.down:
            raise APIConnectionError(message="connection refused", llm_provider="openai", model=kw["model"])
        messages = kw["messages"]
        prompt = messages[-1]["content"]
        big = kw["max_tokens"] == 32
        if prompt.startswith("Please act as an impartial judge"):
            text = "Clear and correct. [[8]]"
        elif prompt.startswith("What is"):
            i = int(prompt.split()[2])
            text = f"The answer is {2 * i if big or i % 2 else 2 * i + 1}"
        elif prompt.startswith("Which letter"):
            text = "B" if big else "A"
        elif prompt == "write add":
            text = "```python\ndef add(a, b):\n    return a + b\n```"
        else:
            text = "Waves."
        finish = "length" if prompt == "What is 3 + 3?" and not big else "stop"
        with self.lock:
            self.answered.append(json.dumps(messages))
        return {"id": "x", "choices": [{"message": {"content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 10 + len(prompt), "completion_tokens": 5}}


def _collect(tmp_path, provider, cache_name="cache", budget=None, queries=QUERIES):
    config = parse_config({**POOL, "budget_usd": budget} if budget is not None else POOL)
    cache = diskcache.Cache(str(tmp_path / cache_name))
    client = make_client(config, cache, transport=provider, retry=FAST, reuse_failures=True)
    from emafusion_core.judges import LLMJudge

    try:
        return collect(config, parse_queries(_table(queries)), client, Scorer(judge=LLMJudge(client, "small")), "mine")
    finally:
        cache.close()


def test_collect_scores_every_model_and_records_failures_as_data(tmp_path):
    provider = Provider()
    got = _collect(tmp_path, provider)
    o = got.suite.outcomes.set_index(["query_id", "model"])
    assert len(o) == 2 * len(QUERIES) and got.complete
    assert o.loc[("n3", "small"), "error_kind"] == "bad_reply" and np.isnan(o.loc[("n3", "small"), "score"])
    assert o.loc[("n3", "small"), "cost_usd"] > 0  # a truncated reply was paid for
    assert o.loc[("n2", "big"), "score"] == 1.0 and o.loc[("n2", "small"), "score"] == 0.0
    assert o.loc[("c0", "big"), "score"] == 1.0 and o.loc[("code0", "small"), "score"] == 1.0
    assert o.loc[("open0", "big"), "score"] == pytest.approx(0.8)
    assert (o["cost_source"] == "recorded").all() and o["input_tokens"].notna().all()
    scoring = got.scoring.set_index(["query_id", "model"])
    assert scoring.loc[("open0", "big"), "judge_cost_usd"] > 0 and scoring["judge_cost_usd"].sum() < o["cost_usd"].sum()
    assert "Be terse." in provider.answered[0] or any("Be terse." in a for a in provider.answered)
    assert any("failed calls: 1 (bad_reply 1)" in line for line in got.report())
    # written and read back as a suite; the references beside it, in no table a router reads
    folder = write_collected(got, tmp_path / "data" / "mine")
    suite = load_suite(folder)
    assert not {"reference", "tests", "scorer"} & (set(suite.queries.columns) | set(suite.outcomes.columns))
    assert pd.read_parquet(folder / "references.parquet")["reference"].iloc[0] == "0"
    assert suite.failed.loc["n3", "small"]


def test_a_rerun_pays_nothing_and_a_budget_stop_resumes_without_paying_twice(tmp_path):
    full = _collect(tmp_path, Provider(), "full")
    rerun_provider = Provider()
    rerun = _collect(tmp_path, rerun_provider, "full")
    assert rerun.spent_usd == 0 and rerun.calls == 0 and rerun_provider.answered == []  # truncations reused too
    pd.testing.assert_frame_equal(rerun.suite.outcomes, full.suite.outcomes)

    provider = Provider()
    stopped = _collect(tmp_path, provider, "resumed", budget=full.spent_usd / 3)
    kinds = stopped.suite.outcomes["error_kind"].value_counts()
    assert not stopped.complete and kinds.get("budget", 0) > 0
    assert stopped.spent_usd <= full.spent_usd / 3 + 1e-12  # the cap is never exceeded
    assert stopped.suite.outcomes.loc[stopped.suite.outcomes["error_kind"] == "budget", "score"].isna().all()
    resumed = _collect(tmp_path, provider, "resumed")
    assert resumed.complete
    pd.testing.assert_frame_equal(resumed.suite.outcomes, full.suite.outcomes)
    pd.testing.assert_frame_equal(resumed.scoring, full.scoring)
    assert stopped.spent_usd + resumed.spent_usd == pytest.approx(full.spent_usd)  # nothing paid twice
    assert len(provider.answered) == len(set(provider.answered))


def test_a_provider_outage_is_recorded_as_failed_calls_and_a_rerun_fills_them(tmp_path):
    provider = Provider()
    provider.down = True
    out = _collect(tmp_path, provider)
    assert set(out.suite.outcomes["error_kind"]) == {"provider_error"} and out.spent_usd == 0 and not out.complete
    provider.down = False
    assert _collect(tmp_path, provider).complete


def test_the_fit_section_can_name_a_collected_suite(tmp_path, monkeypatch):
    rows = QUERIES * 1
    got = _collect(tmp_path, Provider(), queries=[{**q, "query_id": f"{q['query_id']}-{k}", "prompt": q["prompt"]}
                                                  for k in range(3) for q in rows])
    write_collected(got, tmp_path / "data" / "mine")
    monkeypatch.setenv("EMAFUSION_DATA", str(tmp_path / "data"))
    config = parse_config(POOL)
    from emafusion_core.data import load_builtin
    from emafusion_core.features import HashingEncoder
    from emafusion_core.system import fit_method

    assert pool_suite(load_builtin("mine"), config).model_names == ["small", "big"]
    method = fit_method(config, HashingEncoder())
    assert method.model_names_ == ["small", "big"] and method.taxonomy_unavailable_
    hybrid = parse_config({**POOL, "router": {"kind": "hybrid"}})
    with pytest.raises(Exception, match="router.kind: 'hybrid' needs taxonomy labels"):
        fit_method(hybrid, HashingEncoder())
    shipped = parse_config({**POOL, "fit": {"suite": "routerbench"}})
    monkeypatch.delenv("EMAFUSION_DATA")
    with pytest.raises(Exception, match=r"models\[0\].stands_for: required"):
        fit_method(shipped, HashingEncoder())


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    pool = tmp_path / "pool.yaml"
    import yaml

    pool.write_text(yaml.safe_dump(POOL))
    bad = tmp_path / "q.csv"
    pd.DataFrame([{"query_id": "a", "prompt": "x", "scorer": "regex", "reference": "x"}]).to_csv(bad, index=False)
    assert main(["collect", "--config", str(pool), "--queries", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emafusion collect:") and "unknown scorer 'regex'" in err and "\n" not in err
    good = tmp_path / "g.csv"
    pd.DataFrame([{"query_id": "a", "prompt": "x", "scorer": "judge"}]).to_csv(good, index=False)
    assert main(["collect", "--config", str(pool), "--queries", str(good), "--out", str(tmp_path / "o")]) == 2
    assert "needs a judge model" in capsys.readouterr().err
    assert main(["collect", "--config", str(pool), "--queries", str(good), "--out", str(tmp_path / "o"),
                 "--judge", "gpt-9"]) == 2
    assert "--judge: 'gpt-9' is not a model of the pool" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    from emafusion_core.data import default_data_dir

    shipped = default_data_dir() / "routerbench"
    assert main(["collect", "--config", str(pool), "--queries", str(good), "--out", str(shipped), "--judge", "small"]) == 2
    assert "did not write: refusing to overwrite it" in capsys.readouterr().err
