"""A fitted EMAFusion saves without pickles and loads to the same decisions; `emafusion fit` once, then `route`
loads the saved model and runs no fit code; a saved model that does not match the config is refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from emafusion_core import cli
from emafusion_core.features import HashingEncoder
from emafusion_core.method import EMAFusion, OperatingPoint
from emafusion_core.persist import FittedModelError, load_method, read_manifest, save_method
from suite_support import split_sets

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "local.yaml"


@pytest.fixture(scope="module")
def small_fit(routerbench):
    suite = routerbench.subset(sorted(routerbench.query_ids)[::3])
    enc = HashingEncoder(256)
    sets = split_sets(suite, enc, ("fit", "test"))
    return EMAFusion(encoder=enc, state_verifier=True).fit(sets["fit"]), sets, enc


def test_saved_method_loads_to_the_same_decisions(small_fit, tmp_path):
    method, sets, enc = small_fit
    folder = save_method(method, tmp_path / "model", fit={"suite": "routerbench"})
    with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:  # plain arrays only
        assert all(arrays[k].dtype != object for k in arrays.files)
    loaded = load_method(folder, enc)
    test = sets["test"]
    for point in (OperatingPoint("hybrid", tau_c=0.6, tau_fam=0.5, cost_weight=0.05, panel=("verifier",)),
                  OperatingPoint("learned", cost_weight=0.2, panel=("verifier", f"peer:{method.peers_[0]}"),
                                 tau_j=(("*", 0.6),)),
                  OperatingPoint("taxonomy", tau_c=0.7, cascade=False, panel=()),
                  OperatingPoint("hybrid", tau_c=0.6, tau_fam=0.5, panel=(f"state-verifier+peer:{method.peers_[0]}",),
                                 tau_j=(("*", 0.6),), select="support")):
        a, _ = method.decide(test.view, test.executor, point)
        b, _ = loaded.decide(type(test.view)(test.view.queries, test.view.embeddings), test.executor, point)
        for field in ("final", "ran", "judge_cost", "judge_calls", "taxonomy_path"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{point.router} {field}")
    assert read_manifest(folder)["fit"] == {"suite": "routerbench"}


def test_a_missing_or_foreign_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FittedModelError, match="no fitted model here"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(FittedModelError, match="format"):
        read_manifest(tmp_path)


def test_fit_once_then_route_loads_without_fitting(tmp_path, monkeypatch, capsys):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["cache_dir"] = str(tmp_path / "cache")
    config_path = tmp_path / "pool.yaml"
    config_path.write_text(yaml.safe_dump(doc))
    assert cli.main(["fit", "--config", str(config_path), "--out", str(tmp_path / "model")]) == 0
    assert "saved to" in capsys.readouterr().out

    def no_fit(*args, **kwargs):
        raise AssertionError("route ran fit code")

    monkeypatch.setattr(EMAFusion, "fit", no_fit)
    doc["fitted"] = str(tmp_path / "model")
    config_path.write_text(yaml.safe_dump(doc))
    assert cli.main(["route", "--config", str(config_path), "Write a Python function that reverses a list."]) == 0
    out = capsys.readouterr().out
    assert "candidates (cheapest first)" in out and "path:" in out

    doc["fit"]["seed"] = 3  # fitted on seed 0: this config asks for another fit
    config_path.write_text(yaml.safe_dump(doc))
    assert cli.main(["route", "--config", str(config_path), "hello"]) == 2  # a config error: exit 2
    err = capsys.readouterr().err
    assert "fitted:" in err and "emafusion fit" in err and len(err.strip().splitlines()) == 1
