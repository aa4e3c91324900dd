"""The budget explorer in a real browser: JupyterLab from this venv, driven by Playwright with Debian's Chromium.

Runs notebook 05 with Run All, moves the budget slider with the keyboard, and checks what a user would see: the
figure in the slider's output is a PNG <img> whose bytes change, and the printed accuracy and cost change.
Chromium comes from `make browser` (apt-get; never a browser download). Without it, or without playwright, the
test is skipped with the reason, except under CI=true, where that is a failure.
Screenshots go to build/screenshots/ (explorer.png: the notebook page; explorer_widget.png: the slider and its
figure; explorer_failure.png/.html when it fails). 40-70 s on 2 cores (busy or not), most of it notebook 05's Run All.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_budget_explorer.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("EMAFUSION_CHROMIUM", "/usr/lib/chromium/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

# The printed line of the explorer (notebook 05, show()).
LINE = re.compile(r"budget (?P<budget>[0-9.e+-]+) USD/query; .*?accuracy (?P<accuracy>[0-9.]+), "
                  r"cost (?P<cost>[0-9.e+-]+) USD/query")


def _missing(what: str):
    """Skip with the reason, or fail under CI (where the project's own setup must have installed it)."""
    message = f"{what}; `make browser` installs Debian's chromium, `make setup` installs playwright"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str, interval: float = 0.25):
    """Poll condition() until it returns something truthy, at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 (free port, token) serving a copy of notebooks/05 (the checkout's notebook is never
    autosaved over, and its figure goes to the copy's ../figures, not the repo's). Killed afterwards."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        _missing(f"{jupyter} not found (jupyterlab is in the notebooks extra)")
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    (root / "figures").mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    # A clean JupyterLab profile: no restored workspace, no news prompt, no kernel dialog over the page.
    settings = tmp_path / "settings"
    for plugin, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "notebook-extension/tracker": {"autoStartDefaultKernel": True}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel must use the inline backend
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), LITELLM_LOCAL_MODEL_COST_MAP="True",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({proc.returncode}):\n{(tmp_path / 'jupyter.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait(up, 60, "JupyterLab to answer")
        yield base, token
    finally:
        try:  # a clean shutdown stops the kernels too
            req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=15)
        except Exception:
            pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        print(f"[browser] jupyter lab log (end):\n{(tmp_path / 'jupyter.log').read_text(errors='replace')[-3000:]}")


@pytest.fixture
def page():
    """A headless Debian Chromium page (closed afterwards)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def _state(page) -> dict:
    """The slider output's printed line and its figure (PNG bytes), as shown in the page."""
    out = page.locator(".widget-vbox .widget-output").first
    text = out.inner_text(timeout=5_000)
    imgs = out.locator("img")
    png = b""
    if imgs.count():
        src = imgs.first.get_attribute("src") or ""
        if src.startswith("data:image/png;base64,"):
            png = base64.b64decode(src.split(",", 1)[1])
    match = LINE.search(text)
    return {"text": text, "png": png, **({k: float(v) for k, v in match.groupdict().items()} if match else {})}


def test_budget_explorer_in_jupyterlab(page, lab):  # page first: a missing browser skips before Lab starts
    try:
        _explore(lab, page)
    except BaseException:  # what the page showed when it failed (for CI logs)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(SCREENSHOTS / "explorer_failure.png"), full_page=True)
            (SCREENSHOTS / "explorer_failure.html").write_text(page.content())
        except Exception:
            pass
        raise


def _explore(lab, page):
    t0 = time.monotonic()
    base, token = lab
    page.goto(f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}", wait_until="domcontentloaded",
              timeout=60_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    # Wait for the kernel to be idle before Run All (the toolbar's execution indicator says so); a kernel
    # dialog, should one still come up, gets its default.
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        dialog.wait_for(timeout=3_000)
        dialog.click()
    except Exception:
        pass
    page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(
        timeout=60_000)
    # Run All; on a busy machine the first command can land before the kernel is connected and is dropped:
    # ask again (at most three times) until some cell shows it started ("[*]:" or "[1]:").
    started = page.locator(".jp-NotebookPanel .jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            started.first.wait_for(timeout=20_000)
            break
        except Exception:
            if attempt == 2:
                raise

    # The slider shows once the explorer is fitted; the last cell moves it programmatically and prints a line.
    handle = page.locator(".widget-vbox .noUi-handle").first
    handle.wait_for(timeout=150_000)
    page.get_by_text(re.compile(r"USD/query: accuracy [0-9.]+ -> [0-9.]+")).first.wait_for(timeout=60_000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                          has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()

    def shown(previous_budget=None):
        """The slider output's state once it holds a figure and a printed line for a new budget."""
        state = _state(page)
        if state["png"] and "budget" in state and state["budget"] != previous_budget:
            return state
        return None

    def settled():
        """The output once it shows the slider's budget and stays the same for a second (Run All leaves redraws
        in flight: the programmatic move of the last cell and the browser's echo of the snapped slider)."""
        first = shown()
        readout = page.locator(".widget-vbox .widget-readout").first.inner_text().lstrip("$")
        if not first or f"{first['budget']:.3g}" != f"{float(readout):.3g}":
            return None
        time.sleep(1.0)
        again = shown()
        return first if again and again["png"] == first["png"] and again["text"] == first["text"] else None

    before = _wait(settled, 30, "the slider's output to settle on the slider's budget with a figure")
    assert before["png"].startswith(b"\x89PNG\r\n\x1a\n") and len(before["png"]) > 20_000, "no real PNG figure"
    assert "<Figure size" not in before["text"], "the figure was printed as text (Agg backend in the kernel)"
    readout = page.locator(".widget-vbox .widget-readout").first.inner_text()
    assert readout.startswith("$"), f"slider readout {readout!r} is not in USD"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    handle.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "explorer_before.png"))

    # Move the slider with the keyboard (towards cheaper budgets) until the operating point moves.
    handle.focus()
    after, presses = before, 0
    while presses < 30 and (after["accuracy"] == before["accuracy"] or after["cost"] == before["cost"]):
        handle.press("ArrowLeft")
        presses += 1
        after = _wait(lambda: shown(after["budget"]), 20, "the slider's output to redraw after a key press")
    assert after["budget"] < before["budget"], (before["budget"], after["budget"])
    assert after["accuracy"] != before["accuracy"], f"accuracy did not change after {presses} key presses"
    assert after["cost"] != before["cost"], f"cost did not change after {presses} key presses"
    assert after["png"] and after["png"] != before["png"], "the figure's PNG did not change"
    assert page.locator(".widget-vbox .widget-readout").first.inner_text() != readout, "readout did not move"

    page.screenshot(path=str(SCREENSHOTS / "explorer.png"))
    page.locator(".widget-vbox").first.screenshot(path=str(SCREENSHOTS / "explorer_widget.png"))
    print(f"[browser] budget {before['budget']:.3g} -> {after['budget']:.3g} USD/query after {presses} key presses: "
          f"accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}, cost {before['cost']:.2e} -> "
          f"{after['cost']:.2e}; {time.monotonic() - t0:.0f} s in the browser")
