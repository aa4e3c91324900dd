"""The README's self-optimising serve example runs as written (offline: the stub provider, `serve --workers 2
--self-optimising`, curl): every request is counted once in the state the two workers share."""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from serve_support import _env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- self-optimising:start", 1)[1].split("<!-- self-optimising:end -->", 1)[0]
    return [line for line in block.splitlines() if line.startswith((".venv/bin/", "curl "))]


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _argv(command: str) -> list[str]:
    argv = shlex.split(command.rstrip("& "))
    if argv[0].startswith(".venv/bin/"):
        argv[0] = str(Path(sys.executable).parent / Path(argv[0]).name)
    return argv


def _wait_for(port: int, process: subprocess.Popen, log: Path, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while _free(port):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"nothing listens on {port}: {log.read_text()[-3000:]}"
        time.sleep(0.5)


def test_readme_self_optimising_commands_run_as_written(tmp_path):
    commands = _commands()
    assert [c.split()[0].rsplit("/", 1)[-1] for c in commands] == ["python", "emafusion", "curl", "curl", "curl",
                                                                    "emafusion"]
    for link in ("examples", "tests"):
        (tmp_path / link).symlink_to(ROOT / link)
    ports = [int(_argv(c)[-1]) if c.split()[1].endswith("stub_provider.py") else int(_argv(c)[_argv(c).index("--port") + 1])
             for c in commands[:2]]
    assert all(_free(p) for p in ports), f"ports {ports} (the README's example) are taken"
    background, outputs = [], []
    try:
        for command in commands:
            argv = _argv(command)
            if command.rstrip().endswith("&"):
                log = tmp_path / f"background-{len(background)}.log"
                process = subprocess.Popen(argv, cwd=tmp_path, env=_env(), stdout=open(log, "wb"),
                                           stderr=subprocess.STDOUT)
                background.append(process)
                port = ports[len(background) - 1]
                _wait_for(port, process, log)
                continue
            result = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            outputs.append(result.stdout)
        answers = [json.loads(o) for o in outputs[:2]]
        assert all(a["choices"][0]["message"]["content"] == "42" for a in answers), answers
        assert all("self_optimising" in a["emafusion"] for a in answers)
        report = json.loads(outputs[2])
        assert report["enabled"] is True and report["version"] == 2 and report["updates"]["queries"] == 2
        assert report["updates"]["verdicts"] == sum(a["emafusion"]["self_optimising"]["queued_verdicts"]
                                                    for a in answers)
        assert "version 2" in outputs[3] and "queries 2" in outputs[3]
        # the workers share it: whichever answers reports the same version
        for _ in range(10):
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/v1/emafusion/self-optimising", timeout=30) as r:
                assert json.loads(r.read())["version"] == 2
    finally:
        for process in reversed(background):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
