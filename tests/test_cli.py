"""`emafusion data check` tells a user whether their suite is usable, and where it is not."""
from __future__ import annotations

import subprocess
import sys

from suite_support import tiny_tables
from emafusion_core.cli import main


def _write(folder, queries, outcomes, models):
    folder.mkdir()
    queries.to_csv(folder / "queries.csv", index=False)
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    models.to_csv(folder / "models.csv", index=False)
    return folder


def test_data_check_accepts_a_valid_suite(tmp_path, capsys):
    folder = _write(tmp_path / "mine", *tiny_tables(30))  # 6 queries would leave calibrate empty: refused
    assert main(["data", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "ok:" in out and "cheap, dear" in out


def test_data_check_reports_file_column_and_row(tmp_path, capsys):
    q, o, m = tiny_tables()
    o.loc[4, "score"] = 2.0
    folder = _write(tmp_path / "mine", q, o, m)
    assert main(["data", "check", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "outcomes.csv" in err and "'score'" in err and "line 6" in err  # data row 4 = CSV line 6


def test_console_script_is_installed():
    exe = __import__("pathlib").Path(sys.executable).with_name("emafusion")
    result = subprocess.run([str(exe), "data", "check", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "first offending row" in " ".join(result.stdout.split())


def test_route_explains_its_choice(capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "local.yaml"
    assert main(["route", "--config", str(example), "Write a Python function that reverses a list."]) == 0
    out = capsys.readouterr().out
    assert "path:" in out and "candidates (cheapest first):" in out and "taxonomy labels:" in out


def test_route_with_a_broken_config_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {name: a, litellm_model: openai/x}\n")
    assert main(["route", "--config", str(bad), "hi"]) == 2
    assert "models[0].stands_for: required" in capsys.readouterr().err


def test_eval_takes_its_options_as_the_readme_writes_them(tmp_path, capsys):
    assert main(["eval", "--suite", "routerbench", "--seeds", "0", "--encoder", "hashing", "--no-emafusion",
                 "--budgets", "4", "--n-boot", "10", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "baselines_routerbench_summary.csv").exists() and "AIQ" in capsys.readouterr().out


def test_a_failed_call_recorded_in_the_outcomes_is_data_not_a_zero_score(tmp_path, capsys):
    q, o, m = tiny_tables(30)
    o["error_kind"] = None
    o.loc[0, ["score", "error_kind"]] = [None, "provider_error"]
    assert main(["data", "check", str(_write(tmp_path / "ok", q, o, m))]) == 0
    o.loc[1, "score"] = None  # an empty score on a call that did not fail
    assert main(["data", "check", str(_write(tmp_path / "bad", q, o, m))]) == 1
    err = capsys.readouterr().err
    assert "'score'" in err and "line 3" in err and "missing value" in err


def _broken(tmp_path, edit):
    import yaml
    from pathlib import Path

    doc = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "local.yaml").read_text())
    edit(doc)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


import pytest  # noqa: E402


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(budget_usd=float("nan")), "budget_usd"),
    (lambda d: d["models"][0].update(stands_for="gpt-5"), "models[0].stands_for"),
    (lambda d: d["models"][0].update(api_key_env="EMAFUSION_TEST_UNSET_KEY"), "models[0].api_key_env"),
    (lambda d: d["fit"].update(suite="nosuchsuite"), "fit.suite"),
])
def test_every_config_error_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, edit, key):
    monkeypatch.delenv("EMAFUSION_TEST_UNSET_KEY", raising=False)
    path = _broken(tmp_path, edit)
    commands = [["route", "--config", str(path), "hi"], ["ask", "--config", str(path), "hi"]]
    if key != "models[0].api_key_env":  # fitting calls no model: it needs no key
        commands.append(["fit", "--config", str(path), "--out", str(tmp_path / "out")])
    for command in commands:
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f": {key}:" in err and "Traceback" not in err, err
