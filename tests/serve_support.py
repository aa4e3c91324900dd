"""Processes for the ledger and fault tests: the stub provider (tests/stub_provider.py), `emafusion serve`
(with --workers), and a real redis-server from Debian's packages, each on a free loopback port."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STUB = Path(__file__).resolve().with_name("stub_provider.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               LITELLM_LOCAL_MODEL_COST_MAP="True", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post_json(url: str, body: dict, timeout: float = 60) -> tuple[int, dict, dict]:
    """(status, body, headers with lower-case names) of a POST, errors included."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read()), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), {k.lower(): v for k, v in e.headers.items()}


class Stub:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc, self.port = proc, port
        self.api_base = f"http://127.0.0.1:{port}/v1"

    def control(self, mode: str, delay_s: float = 0.0) -> None:
        post_json(f"http://127.0.0.1:{self.port}/control", {"mode": mode, "delay_s": delay_s})

    def stats(self) -> dict:
        return get_json(f"http://127.0.0.1:{self.port}/stats")

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


@contextlib.contextmanager
def stub_provider(port: int | None = None):
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, str(STUB), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", "stub provider did not start"
        yield Stub(proc, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def stub_config(path: Path, api_base: str, *, budget_usd: float | None, cache_dir: Path, **more) -> Path:
    """A two-model config on the stub (prices made up so costs are visible), judged by the fitted verifier."""
    doc = {
        "models": [
            {"name": "small", "litellm_model": "openai/stub", "api_base": api_base, "stands_for":
             "mistralai/mistral-7b-chat", "family": "local", "price": {"input": 20, "output": 20}, "max_tokens": 16},
            {"name": "large", "litellm_model": "openai/stub", "api_base": api_base, "stands_for":
             "gpt-4-1106-preview", "family": "local", "price": {"input": 100, "output": 300}, "max_tokens": 16},
        ],
        "fit": {"suite": "routerbench", "seed": 0},
        "router": {"kind": "learned"},
        "cascade": {"enabled": True, "tau_j": 0.7, "judges": ["verifier"], "rule": "mean"},
        "budget_usd": budget_usd, "cache_dir": str(cache_dir), "mode": "live", "timeout_s": 5.0, **more,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class Serving:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def health(self) -> dict:
        return get_json(f"{self.url}/health")

    def ask(self, text: str, model: str = "emafusion", timeout: float = 60) -> tuple[int, dict, dict]:
        return post_json(f"{self.url}/v1/chat/completions",
                         {"model": model, "messages": [{"role": "user", "content": text}]}, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def emafusion_serve(config: Path, log: Path, *, workers: int = 1, port: int | None = None, ready_s: float = 240):
    """`emafusion serve --workers N` in a process; ready when /health answers (every worker builds its system)."""
    port = port or free_port()
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emafusion_core.cli", "serve", "--config", str(config),
                                 "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                                stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    served = Serving(proc, port, log)
    try:
        deadline = time.monotonic() + ready_s
        while True:
            assert proc.poll() is None, f"emafusion serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"emafusion serve not ready: {log.read_text()[-2000:]}"
            with contextlib.suppress(OSError):
                served.health()
                break
            time.sleep(0.25)
        yield served
    finally:
        served.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emafusion_core.cli", *args], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=120)


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server",) if os.path.exists(p)), None)


@contextlib.contextmanager
def redis_server(tmp: Path):
    """A real redis-server on a free port, no persistence. Missing: skipped, but a failure under CI=true."""
    exe = redis_server_path()
    if exe is None:
        message = "redis-server is missing: `make redis` installs Debian's (root), or apt-get install redis-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
