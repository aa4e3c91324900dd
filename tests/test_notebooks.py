"""Every notebook runs under papermill, writes what it promises, and matches the committed figures/."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from emafusion_core import reproduce

FIGURES = Path(__file__).resolve().parents[1] / "figures"


@pytest.fixture(scope="module")
def quick_dirs(tmp_path_factory):
    """Every notebook at quick parameters: (outputs dir, executed notebooks dir)."""
    import shutil

    out = FIGURES.parent / "build" / "test-quick-figures"  # notebooks write inside the repository only
    shutil.rmtree(out, ignore_errors=True)
    build = tmp_path_factory.mktemp("build")
    assert reproduce.main(["--quick", "--out-dir", str(out), "--build-dir", str(build)]) == 0
    return out, build


@pytest.fixture(scope="module")
def quick_run(quick_dirs):
    return quick_dirs[0]


def test_every_notebook_has_a_parameters_cell():
    import nbformat

    paths = reproduce.notebooks()
    assert paths, "no notebooks found"
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        tags = [cell.metadata.get("tags", []) for cell in nb.cells]
        assert any("parameters" in t for t in tags), path.name
        assert path.stem in reproduce.OUTPUTS, f"{path.name} lists no outputs in reproduce.OUTPUTS"


@pytest.mark.slow
def test_notebooks_write_their_outputs_and_match_committed_tables(quick_run):
    for name, exact in reproduce.expected_outputs(reproduce.QUICK_RUNS).items():
        produced = quick_run / name
        assert produced.exists() and produced.stat().st_size > 0, f"the quick run did not write {name}"
        if exact:
            committed = pd.read_csv(FIGURES / name)
            pd.testing.assert_frame_equal(pd.read_csv(produced), committed, check_exact=False, rtol=1e-9)


@pytest.mark.slow
def test_executed_notebooks_show_the_figures_they_save(quick_dirs):
    """Inline backend under papermill: every notebook that saves a PNG holds one as an output (not the text
    `<Figure size ...>` that a headless backend in the kernel gives)."""
    import nbformat

    for stem, params in reproduce.QUICK_RUNS:
        if not any(name.endswith(".png") for name in reproduce.OUTPUTS[stem]):
            continue
        nb = nbformat.read(quick_dirs[1] / f"{reproduce.run_name(stem, params)}.ipynb", as_version=4)
        shown = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        assert shown, f"{stem} saves a figure but shows none"
        as_text = [out for cell in nb.cells for out in cell.get("outputs", [])
                   if "<Figure size" in out.get("data", {}).get("text/plain", "") and "image/png" not in out["data"]]
        assert not as_text, f"{stem} printed a figure as text"


@pytest.mark.slow
def test_failing_notebook_fails_the_run(tmp_path, monkeypatch):
    import nbformat
    import papermill

    bad = tmp_path / "99_broken.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("out_dir = '.'"), nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, bad)
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        reproduce.run_notebook(bad, tmp_path, tmp_path / "build")


def test_notebooks_run_without_nbclients_output_widget_mirror(tmp_path):
    """run_notebook's engine leaves Output widgets alone (nbclient's mirror writes on the shell socket while the
    cell's reply is awaited there, which can hang a run: notebook_engine.py): what a cell prints inside an Output
    widget stays in that cell's outputs, and the run ends."""
    import nbformat

    path = tmp_path / "98_widget.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("out_dir = '.'"),
                nbformat.v4.new_code_cell("import ipywidgets as w\nout = w.Output()\ndisplay(out)\n"
                                          "with out:\n    print('inside the widget')")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    done = nbformat.read(reproduce.run_notebook(path, tmp_path, tmp_path / "build"), as_version=4)
    texts = [o.get("text", "") for o in done.cells[-1].outputs if o.get("output_type") == "stream"]
    assert any("inside the widget" in t for t in texts)


@pytest.mark.slow
def test_a_failing_notebook_fails_a_parallel_run_and_the_others_still_finish(tmp_path):
    import nbformat
    import papermill

    for name, code in (("90_fine", "open(f'{out_dir}/fine.txt', 'w').write('ok')"),
                       ("91_broken", "raise RuntimeError('boom')")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("out_dir = '.'"), nbformat.v4.new_code_cell(code)]
        nb.cells[0].metadata["tags"] = ["parameters"]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        reproduce.run_all([("91_broken", {}), ("90_fine", {})], tmp_path, tmp_path / "build", jobs=2,
                          folder=tmp_path)
    assert (tmp_path / "fine.txt").read_text() == "ok"


def test_claims_files_of_parallel_runs_join_in_suite_order(tmp_path):
    cols = ["suite", "claim", "paper_value", "ours", "ci_low", "ci_high", "verdict", "how"]
    for stem, suite in (("mysuite", "mysuite"), ("self_optimising_zeroeval", "zeroeval"),
                        ("zeroeval_x4", "zeroeval (x4)"), ("zeroeval", "zeroeval"), ("routerbench", "routerbench")):
        pd.DataFrame([[suite, stem, 1, 1, 0, 2, "holds", ""]], columns=cols).to_csv(tmp_path / f"claims_{stem}.csv",
                                                                                  index=False)
    path = reproduce.write_claims(tmp_path)
    assert pd.read_csv(path)["claim"].tolist() == ["routerbench", "zeroeval", "zeroeval_x4",
                                                   "self_optimising_zeroeval", "mysuite"]
    assert reproduce.write_claims(tmp_path / "nothing-here") is None


def test_readme_claims_table_is_the_committed_claims_csv():
    readme = (FIGURES.parent / "README.md").read_text()
    assert readme == reproduce.readme_with_claims(readme, FIGURES), \
        "README's claims table differs from figures/claims.csv: run make reproduce"
    assert reproduce.CLAIMS_START in readme


def test_claims_csv_has_the_contract_columns():
    claims = pd.read_csv(FIGURES / "claims.csv")
    assert {"claim", "paper_value", "ours", "ci_low", "ci_high", "verdict"} <= set(claims.columns)
    assert set(reproduce.SUITES) <= set(claims["suite"])
    assert claims.loc[claims["paper_value"].notna(), "verdict"].notna().all(), "a row quoting the paper has no verdict"


def test_drift_check_sees_a_changed_number_but_not_float_noise():
    a = pd.DataFrame({"policy": ["x", "y"], "accuracy": [0.5, 0.75]})
    assert reproduce._same_table(a, a.assign(accuracy=[0.5 + 1e-12, 0.75])) is None
    assert "accuracy" in reproduce._same_table(a, a.assign(accuracy=[0.5, 0.76]))
    assert "policy" in reproduce._same_table(a, a.assign(policy=["x", "z"]))
    assert reproduce._same_table(a, a.drop(columns="policy")) is not None
