"""The YAML configuration: the example loads; every mistake is reported with the key at fault."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emafusion_core.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "local.yaml"


def _doc():
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert [m.name for m in config.models] == ["small", "large"]
    assert config.router.kind == "hybrid" and config.cascade.judges == ("verifier", "llm:small") and config.cascade.llm_judges == ["small"]


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(modle=[]), "config.modle"),
    (lambda d: d["models"][1].pop("litellm_model"), "models[1].litellm_model"),
    (lambda d: d["models"][0]["price"].update(input="cheap"), "models[0].price.input"),
    (lambda d: d["models"][0]["price"].update(input=-1), "models[0].price.input"),
    (lambda d: d["models"][0].update(api_key_env="sk-123-secret"), "models[0].api_key_env"),
    (lambda d: d["router"].update(kind="magic"), "router.kind"),
    (lambda d: d["router"].update(tau_c=1.5), "router.tau_c"),
    (lambda d: d["cascade"].update(judges=["gpt-9"]), "cascade.judges[0]"),
    (lambda d: d["cascade"].update(rule="vote"), "cascade.rule"),
    (lambda d: d.update(mode="offline"), "mode"),
    (lambda d: d["models"].append(dict(d["models"][0])), "models"),
])
def test_mistakes_name_the_key(edit, key):
    doc = _doc()
    edit(doc)
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert str(err.value).startswith(key)


def test_a_key_never_lands_in_the_error(tmp_path):
    doc = _doc()
    doc["models"][0]["api_key_env"] = "sk-live-abcdef"
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert "sk-live-abcdef" not in str(err.value)


def test_bad_yaml_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_stands_for_may_be_left_out_for_a_suite_collected_for_the_pool():
    doc = _doc()
    doc["models"][1].pop("stands_for")
    config = parse_config(doc)
    assert config.models[1].stands_for is None and config.models[1].suite_model == "large"


def test_stands_for_must_name_a_model_of_the_suite(routerbench):
    from emafusion_core.system import pool_suite

    doc = _doc()
    doc["models"][0]["stands_for"] = "gpt-5"
    with pytest.raises(ConfigError, match=r"models\[0\].stands_for"):  # the key path as the file writes it
        pool_suite(routerbench, parse_config(doc))
    suite = pool_suite(routerbench, load_config(EXAMPLE))
    assert suite.model_names == ["small", "large"] and len(suite.queries) == 3164


@pytest.mark.parametrize("edit, key", [  # the issue's list: each was accepted, or crashed, before the schema
    (lambda d: d.update(budget_usd=float("nan")), "budget_usd"),
    (lambda d: d.update(budget_usd=float("inf")), "budget_usd"),
    (lambda d: d["cascade"].update(tau_j=float("nan")), "cascade.tau_j"),
    (lambda d: d["models"][0].update(temperature=float("nan")), "models[0].temperature"),
    (lambda d: d["cascade"].update(enabled="false"), "cascade.enabled"),
    (lambda d: d["models"][0].update(price={"input": 1}), "models[0].price.output"),
    (lambda d: d["models"][1].update(max_tokens=64.7), "models[1].max_tokens"),
    (lambda d: d["models"][1].update(max_tokens=True), "models[1].max_tokens"),
    (lambda d: d["router"].update(k=2.5), "router.k"),
    (lambda d: d.update(cache_dir=None), "cache_dir"),
    (lambda d: d["models"][0].update(api_base=8080), "models[0].api_base"),
    (lambda d: d["cascade"].update(judges="small"), "cascade.judges"),
    (lambda d: d["models"][1].update(stands_for=d["models"][0]["stands_for"]), "models[1].stands_for"),
    (lambda d: d["fit"].update(seed="0"), "fit.seed"),
    (lambda d: d.update(timeout_s=0), "timeout_s"),
    (lambda d: d.update(deadline_s=float("nan")), "deadline_s"),
    (lambda d: d["models"][0]["price"].update(colour=1), "models[0].price.colour"),
])
def test_the_schema_refuses_what_the_issue_found(edit, key):
    doc = _doc()
    edit(doc)
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert str(err.value).startswith(key + ":") and "\n" not in str(err.value), str(err.value)


def test_typed_fields_keep_their_types():
    config = load_config(EXAMPLE)
    assert isinstance(config.models[0].max_tokens, int) and isinstance(config.router.k, int)
    assert isinstance(config.models[0].price_in, float) and config.cascade.enabled is True
    assert config.timeout_s == 120.0 and config.deadline_s is None
    assert config.fit_signature()["k"] == 3 and config.operating_point is None and config.fitted is None
