"""The README's collect commands run as written (collect, data check, eval, fit, serve), against the local
SmolLM2 server on the port examples/collect/pool.yaml names, from a scratch working directory that sees the
repository's examples/ (so data/mypool, its cache and build/ land there, not in the repository)."""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from emafusion_core.llm.local_server import local_llama_server

pytestmark = [pytest.mark.live, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
POOL_PORT = 8087  # examples/collect/pool.yaml's api_base


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- collect:start", 1)[1].split("<!-- collect:end -->", 1)[0]
    return [line for line in block.splitlines() if line.startswith(".venv/bin/")]


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    argv[0] = str(Path(sys.executable).parent / Path(argv[0]).name)
    return argv


def test_readme_collect_commands_run_as_written(tmp_path):
    commands = _commands()
    assert [c.split()[1] for c in commands] == ["collect", "data", "eval", "fit", "serve"]
    assert _free(POOL_PORT), f"port {POOL_PORT} (examples/collect/pool.yaml) is taken: stop what listens there"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "EMAFUSION_DATA": str(tmp_path / "data")}
    env.pop("MPLBACKEND", None)
    with local_llama_server(port=POOL_PORT, log_path=tmp_path / "llama.log"):
        for command in commands[:-1]:
            result = subprocess.run(_argv(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            if command.split()[1] == "collect":
                assert "collected mypool: 16 queries x 3 models" in result.stdout
        outcomes = pd.read_parquet(tmp_path / "data" / "mypool" / "outcomes.parquet")
        assert len(outcomes) == 48 and (tmp_path / "data" / "mypool" / "references.parquet").exists()
        assert (tmp_path / "build" / "mypool-fitted" / "manifest.json").exists()
        serve = _argv(commands[-1])
        port = int(serve[serve.index("--port") + 1])
        assert _free(port), f"port {port} (the README's serve command) is taken"
        process = subprocess.Popen(serve, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                   stderr=open(tmp_path / "serve.log", "wb"))
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "serve did not start"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=180, json={
                "model": "emafusion", "messages": [{"role": "user", "content": "What is the capital of France?"}]})
            assert reply.status_code == 200, reply.text
            assert set(reply.json()["emafusion"]["models_run"]) <= {"terse", "brief", "careful"}
        finally:
            process.terminate()
            process.wait(30)
