"""Fixtures for the gateway tests: the real SmolLM2 server, a counting reverse proxy in front of it, and
clients whose caches live in temporary directories."""
from __future__ import annotations

import json
import time
import urllib.request

import diskcache
import pytest

import emafusion_core  # noqa: F401 - sets the offline environment before litellm is imported
from emafusion_core.llm import Budget, LLMClient, Pricer
from emafusion_core.llm.local_server import local_llama_server
from gateway_support import FAST_RETRY, MODEL, SMOL_PRICES, CountingProxy

def _warm_up(api_base: str) -> None:
    """The first decode after start takes seconds (weights paged in); pay it once, outside the tests."""
    body = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).encode()
    request = urllib.request.Request(f"{api_base}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=120).read()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    started = time.perf_counter()
    with local_llama_server(log_path=tmp_path_factory.mktemp("llama") / "server.log") as server:
        ready = time.perf_counter() - started
        _warm_up(server.api_base)
        print(f"\n[llama server] ready in {ready:.2f} s, warm in {time.perf_counter() - started:.2f} s")
        yield server


@pytest.fixture(scope="session")
def _session_proxy(llama_server):
    proxy = CountingProxy(f"http://{llama_server.host}:{llama_server.port}")
    yield proxy
    proxy.close()


@pytest.fixture
def proxy(_session_proxy):
    """The counting proxy in front of the real server, with counters reset for this test."""
    _session_proxy.reset()
    return _session_proxy


@pytest.fixture
def stub():
    """A counting proxy with no upstream: serves only the canned responses a test queues."""
    proxy = CountingProxy(None)
    yield proxy
    proxy.close()


@pytest.fixture
def make_client(tmp_path):
    """Builds clients over caches in this test's temporary directory; closes the caches afterwards."""
    caches = {}

    def build(api_base: str | None = None, *, cache_name: str = "cache", mode: str = "live", budget=None,
              prices=None, endpoint: dict | None = None, **kw) -> LLMClient:
        if cache_name not in caches:
            caches[cache_name] = diskcache.Cache(str(tmp_path / cache_name))
        settings = dict(endpoint or {})
        if api_base is not None:
            settings = {"api_base": api_base, "api_key": "none", **settings}
        client = LLMClient(caches[cache_name], mode=mode, pricer=Pricer(SMOL_PRICES if prices is None else prices),
                           budget=budget if isinstance(budget, Budget) or budget is None else Budget(budget),
                           retry=kw.pop("retry", FAST_RETRY), endpoints={kw.pop("model", MODEL): settings},
                           progress=kw.pop("progress", False), **kw)
        return client

    build.cache_dir = tmp_path
    build.caches = caches
    yield build
    for cache in caches.values():
        cache.close()
