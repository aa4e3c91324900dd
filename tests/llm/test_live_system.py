"""`emafusion ask` end to end against the real local model: routers fitted on routerbench, the cascade and an
LLM judge calling SmolLM2 through the gateway; a repeated request is served from the disk cache."""
from __future__ import annotations

from pathlib import Path

import diskcache
import pytest
import yaml

from emafusion_core.config import parse_config
from emafusion_core.system import EMAFusionSystem, describe, make_client

pytestmark = pytest.mark.live
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local.yaml"


def test_ask_runs_live_then_from_cache(proxy, tmp_path):
    doc = yaml.safe_load(EXAMPLE.read_text())
    for m in doc["models"]:
        m["api_base"] = proxy.api_base
        m["max_tokens"] = 96
    doc["cache_dir"] = str(tmp_path / "cache")
    doc["router"]["kind"] = "learned"  # both models are candidates: a judged step, then escalation
    config = parse_config(doc)
    cache = diskcache.Cache(config.cache_dir)
    system = EMAFusionSystem.build(config, client=make_client(config, cache))
    question = "Answer in one word. What is the capital of France?"
    first = system.ask(question)
    assert first.answer.strip() and first.cost_usd > 0 and proxy.requests >= 2
    table = describe(first)
    assert table["path"].iloc[0] == "learned" and table["models_run"].iloc[0].startswith("small")
    final = first.parts[0][2].answer
    again = EMAFusionSystem.build(config, client=make_client(config, cache)).ask(question)
    if final.ok:  # a successful answer is served from the disk cache the second time, identical
        assert again.parts[0][2].answer.cached and again.answer == first.answer
    else:  # a failed (e.g. truncated) answer is never cached as a success: it is asked again
        assert not again.parts[0][2].answer.cached
    cache.close()
