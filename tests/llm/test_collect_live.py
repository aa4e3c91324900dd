"""collect -> fit -> evaluate -> serve against the real local SmolLM2: a pool of two "models" (the same server
with different system prompts and output lengths) on real questions with references (GSM8K numbers, MMLU-Pro
letters, code with tests, short answers). The server is killed mid-collection: the resumed run's suite equals
an uninterrupted one and no call is paid twice."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import diskcache
import httpx
import pandas as pd
import pytest
import yaml

import emafusion_core  # noqa: F401 - offline environment before litellm
from emafusion_core.cli import main
from emafusion_core.collect import Scorer, collect, load_queries
from emafusion_core.config import parse_config
from emafusion_core.features import HashingEncoder
from emafusion_core.llm.local_server import local_llama_server
from emafusion_core.server import create_app
from emafusion_core.system import EMAFusionSystem, fit_method, make_client, operating_point
from gateway_support import FAST_RETRY
from test_server import serving

pytestmark = [pytest.mark.live, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
N_QUERIES = 15  # examples/collect/queries-small.jsonl but its judge query (every other scorer), max_tokens <= 32


def _queries(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in (ROOT / "examples/collect/queries-small.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["scorer"] != "judge"][:N_QUERIES]
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pool(api_base: str, cache_dir: Path) -> dict:
    doc = yaml.safe_load((ROOT / "examples/collect/pool.yaml").read_text())
    doc["models"] = [m for m in doc["models"] if m["name"] in ("terse", "careful")]
    for m in doc["models"]:
        m["api_base"] = api_base
        assert m["max_tokens"] <= 32
    doc.update(cache_dir=str(cache_dir), fit={"suite": "mine", "seed": 0})
    return doc


def _run(doc: dict, queries: Path):
    config = parse_config(doc)
    cache = diskcache.Cache(config.cache_dir)
    try:
        client = make_client(config, cache, retry=FAST_RETRY, reuse_failures=True)
        return collect(config, load_queries(queries), client, Scorer(), "mine")
    finally:
        cache.close()


def test_collect_resumes_after_the_server_dies_then_fit_eval_and_serve(llama_server, proxy, tmp_path, monkeypatch,
                                                                      capsys):
    queries = _queries(tmp_path)
    timings = {}
    started = time.perf_counter()
    full = _run(_pool(proxy.api_base, tmp_path / "cache-full"), queries)
    timings["uninterrupted"] = time.perf_counter() - started
    n = 2 * N_QUERIES
    assert full.complete and len(full.suite.outcomes) == n and proxy.forwarded == n
    answered = full.suite.outcomes["score"].notna().sum()
    assert answered > 0 and full.suite.outcomes["cost_usd"].gt(0).all()

    # the same collection, its server killed a third of the way through
    cache_dir = tmp_path / "cache-resumed"
    started = time.perf_counter()
    with local_llama_server(log_path=tmp_path / "doomed.log") as doomed:
        box = {}
        worker = threading.Thread(target=lambda: box.update(run=_run(_pool(doomed.api_base, cache_dir), queries)))
        worker.start()
        with diskcache.Cache(str(cache_dir)) as peek:
            while len(peek) < n // 3 and worker.is_alive():
                time.sleep(0.05)
        doomed.stop(timeout_s=0.1)
        worker.join(300)
    stopped = box["run"]
    kinds = stopped.suite.outcomes["error_kind"].value_counts()
    assert not stopped.complete and kinds.get("provider_error", 0) > 0
    assert stopped.suite.outcomes.loc[stopped.suite.outcomes["error_kind"] == "provider_error", "score"].isna().all()
    proxy.reset()
    resumed = _run(_pool(proxy.api_base, cache_dir), queries)
    timings["interrupted + resumed"] = time.perf_counter() - started
    assert resumed.complete
    pd.testing.assert_frame_equal(resumed.suite.outcomes, full.suite.outcomes)
    pd.testing.assert_frame_equal(resumed.suite.queries, full.suite.queries)
    pd.testing.assert_frame_equal(resumed.scoring, full.scoring)
    # nothing paid twice: the resumed run asked only for what the first one did not get, and together they paid
    # what the uninterrupted run paid
    assert proxy.forwarded == n - resumed.cached
    assert stopped.spent_usd + resumed.spent_usd == pytest.approx(full.spent_usd)

    # the CLI over the full cache: written, and a rerun pays nothing
    data = tmp_path / "data"
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(yaml.safe_dump(_pool(proxy.api_base, tmp_path / "cache-full")))
    proxy.reset()
    assert main(["collect", "--config", str(pool_file), "--queries", str(queries), "--out", str(data / "mine")]) == 0
    out = capsys.readouterr().out
    assert "0 provider calls, $0.000000 paid by this run" in out and proxy.forwarded == 0
    monkeypatch.setenv("EMAFUSION_DATA", str(data))
    assert main(["data", "check", "mine"]) == 0

    # evaluate on it by replay, fit on it, serve from a config whose fit section names it
    started = time.perf_counter()
    assert main(["eval", "--suite", "mine", "--seeds", "0", "--encoder", "hashing", "--budgets", "3",
                 "--n-boot", "20", "--out", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "baselines_mine_summary.csv").exists()
    timings["eval"] = time.perf_counter() - started
    config = parse_config(_pool(proxy.api_base, tmp_path / "cache-serve"))
    assert all(m.stands_for is None for m in config.models)
    method = fit_method(config, HashingEncoder())
    assert method.model_names_ == ["terse", "careful"]
    cache = diskcache.Cache(config.cache_dir)
    try:
        system = EMAFusionSystem(config, method, operating_point(config), make_client(config, cache, retry=FAST_RETRY))
        with serving(create_app(system, None)) as url:
            reply = httpx.post(f"{url}/chat/completions", timeout=120, json={
                "model": "emafusion", "messages": [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}]})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert set(body["emafusion"]["models_run"]) <= {"terse", "careful"} and body["emafusion"]["models_run"]
        assert body["choices"][0]["message"]["content"]
    finally:
        cache.close()
    print(f"\n[collect live] {n} calls per collection; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_ctrl_c_stops_collect_and_the_rerun_resumes_from_the_cache(llama_server, proxy, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    queries = _queries(tmp_path)
    rows = queries.read_text().splitlines()[:6]
    queries.write_text("\n".join(rows) + "\n")
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(yaml.safe_dump(_pool(proxy.api_base, tmp_path / "cache")))
    argv = [sys.executable, "-m", "emafusion_core.cli", "collect", "--config", str(pool_file), "--queries",
            str(queries), "--out", str(tmp_path / "data" / "mine"), "--concurrency", "1"]
    # -X faulthandler: should the interrupted process hang, SIGABRT makes it print every thread's stack
    # preexec_fn: Ctrl-C's default disposition, also when this run inherited SIGINT ignored (a background job
    # of a non-interactive shell, e.g. `nohup make test &`): Python then installs no KeyboardInterrupt handler
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", *argv[1:]], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (tmp_path / "cache").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with diskcache.Cache(str(tmp_path / "cache")) as peek:
        while len(peek) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert process.poll() is None, "collect ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)  # it cancels what is in flight (<= 5 s) and exits
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate(timeout=30)
        pytest.fail("collect did not exit within 60 s of Ctrl-C; its threads:\n" + err[-6000:])
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err and "rerun the same command to resume" in err
    assert not (tmp_path / "data" / "mine").exists()  # nothing half-written
    with diskcache.Cache(str(tmp_path / "cache")) as peek:
        done = len(peek)
    # the interrupted process's last calls may still be answered upstream, or sit unread in the proxy's socket
    # queue when it exits (it exits in well under a second): count anew only once the proxy has been quiet
    _wait_until_quiet(proxy, deadline)
    proxy.reset()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    # only the calls the interrupted run did not finish
    assert proxy.forwarded == 12 - done, (proxy.forwarded, done, result.stderr[-1500:])
    assert len(pd.read_parquet(tmp_path / "data" / "mine" / "outcomes.parquet")) == 12


def _wait_until_quiet(proxy, deadline: float, quiet_s: float = 1.5) -> None:
    """Until the proxy has had nothing in flight and no new request for quiet_s seconds."""
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = (proxy.requests, proxy.inflight)
        if state != last:
            last, since = state, time.monotonic()
        elif proxy.inflight == 0 and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)
