"""The README's own-data commands run as written on a small user-style suite (CSV, no responses, no taxonomy
labels, benchmark names in mixed case): data check, the models-table and comparison notebooks, emafusion eval."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- own-data:start", 1)[1].split("<!-- own-data:end -->", 1)[0]
    return [line for line in block.splitlines() if line.startswith(".venv/bin/")]


def _user_suite(folder: Path, n: int = 60) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    benchmarks = ["My-Maths", "WRITING tasks"]
    queries = pd.DataFrame({"query_id": [f"u{i}" for i in range(n)], "benchmark": [benchmarks[i % 2] for i in range(n)],
                            "prompt": [f"{'compute' if i % 2 == 0 else 'write about'} item {i} and {i % 7}"
                                       for i in range(n)]})
    rows = []
    for i in range(n):
        for model, cost, skill in (("small", 0.001, 0.4), ("medium", 0.003, 0.6), ("large", 0.01, 0.9)):
            rows.append(dict(query_id=f"u{i}", model=model, score=float(rng.random() < skill), cost_usd=cost))
    queries.to_csv(folder / "queries.csv", index=False)
    pd.DataFrame(rows).to_csv(folder / "outcomes.csv", index=False)
    pd.DataFrame({"model": ["small", "medium", "large"], "family": ["a", "b", "c"]}).to_csv(folder / "models.csv",
                                                                                           index=False)


def test_readme_own_data_commands_run_as_written(tmp_path):
    commands = _readme_commands()
    assert len(commands) >= 4 and any("papermill" in c for c in commands)
    data = tmp_path / "data"
    _user_suite(data / "mysuite")
    env = {**os.environ, "EMAFUSION_DATA": str(data)}
    env.pop("MPLBACKEND", None)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        argv = shlex.split(command)
        argv[0] = str(bin_dir / Path(argv[0]).name)
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        if "data check" in command:
            assert "ok:" in result.stdout and re.search(r"taxonomy label", result.stdout + result.stderr)
        if "emafusion eval" in command:
            assert "unavailable" in result.stdout + result.stderr  # no labels: the taxonomy variants say so
    assert (ROOT / "build" / "figures" / "models_table.csv").exists()
    table = pd.read_csv(ROOT / "build" / "figures" / "models_table.csv")
    assert set(table["suite"]) == {"mysuite"}  # a user's models table holds only their suite
