"""Running a model's Python code against a query's tests, away from everything that matters.

The code is untrusted text from a model. It runs in a child process with a wall-clock limit, CPU-time,
memory and file-size limits (resource.setrlimit), in a fresh scratch directory (deleted afterwards), with an
empty environment (API keys live in the parent's), and inside a new network namespace (`unshare -n`: no
interface but a downed loopback). Where no network namespace can be created, code scoring refuses to run
rather than run with network access.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache


class SandboxUnavailable(RuntimeError):
    """Code cannot be run safely here (no network namespace); the message says why in one line."""


@dataclass(frozen=True)
class RunResult:
    passed: bool
    detail: str  # "passed", "failed: <last line of stderr>", "timeout", ...


@lru_cache(maxsize=None)
def _unshare_prefix() -> tuple[str, ...]:
    """The command prefix that puts a process in a new network namespace, probed once; SandboxUnavailable
    if there is none (root may create one; other users need unprivileged user namespaces: `unshare -rn`)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SandboxUnavailable("code scoring refuses to run: `unshare` (util-linux) is not installed, so the "
                                 "code could not be cut off from the network")
    tried = []
    for prefix in ((unshare, "-n"), (unshare, "-r", "-n")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=10, env={})
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{' '.join(prefix[1:])}: {exc}")
            continue
        if probe.returncode == 0:
            return prefix
        tried.append(f"unshare {' '.join(prefix[1:])}: {' '.join(probe.stderr.split()) or probe.returncode}")
    raise SandboxUnavailable("code scoring refuses to run: this user cannot create a network namespace ("
                             + "; ".join(tried) + "), so the code could not be cut off from the network")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Sandbox:
    """Runs `code + tests` as a Python program; passed means exit status 0 within the limits.

    wall_s / cpu_s: wall-clock and CPU seconds; memory_mb: address-space limit; file_mb: largest file written."""

    def __init__(self, *, wall_s: float = 10.0, cpu_s: int = 5, memory_mb: int = 512, file_mb: int = 16,
                 python: str = sys.executable):
        self.wall_s, self.cpu_s, self.memory_mb, self.file_mb, self.python = wall_s, cpu_s, memory_mb, file_mb, python

    def check(self) -> None:
        """SandboxUnavailable (one line) if code cannot be run safely here."""
        _unshare_prefix()

    def _limits(self) -> None:  # runs in the child between fork and exec
        os.setsid()  # its own process group: a timeout kills the code's children too
        mem = self.memory_mb * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_s, self.cpu_s))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_mb * 2 ** 20,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def run(self, code: str, tests: str) -> RunResult:
        prefix = _unshare_prefix()
        with tempfile.TemporaryDirectory(prefix="emafusion-code-") as scratch:
            program = os.path.join(scratch, "main.py")
            with open(program, "w") as f:
                f.write(code + "\n\n" + tests + "\n")
            # -I: isolated mode (no PYTHON* variables, no user site, the script's folder not on sys.path)
            argv = [*prefix, self.python, "-I", program]
            try:
                proc = subprocess.Popen(argv, cwd=scratch, env={}, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        preexec_fn=self._limits)
            except OSError as exc:
                return RunResult(False, f"could not start: {exc}")
            try:
                _, err = proc.communicate(timeout=self.wall_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.communicate()
                return RunResult(False, "timeout")
            _kill_group(proc.pid)  # whatever the code left running in the background
        if proc.returncode == 0:
            return RunResult(True, "passed")
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return RunResult(False, "cpu limit")
        last = (err.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return RunResult(False, f"failed: {last[:200]}")
