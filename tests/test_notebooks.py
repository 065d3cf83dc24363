"""The study notebooks: committed clean, run through papermill at ``smoke``, and the book built from them.

The ``study_book`` fixture (conftest.py) runs the smoke study and builds the book once per test
session (the browser test in ``test_book.py`` reuses it); everything it writes lives under a
temporary folder, so the repo's ``runs/``, ``data/`` and ``book/study/`` are never touched. The
paper's tables and the statistics the notebooks rest on are tested in ``test_stats.py``.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from ofdb_study import study
from ofdb_study.cli import main

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
OURS = ("01_data", "02_instances_vs_augmentation", "03_category_scaling", "04_results")


# ----------------------------------------------------------------------------------------------
# The source notebooks.


def _source(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


@pytest.mark.parametrize("name", OURS)
def test_notebook_committed_clean_with_literal_parameters(name):
    nb = _source(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs (nbstripout)"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.Assign), ast.dump(stmt)
        ast.literal_eval(stmt.value)  # papermill overrides only work on independent literals
    names = {t.id for s in ast.parse(tagged[0].source).body for t in s.targets}
    assert "profile" in names
    # thin: no training loop in a cell
    assert not any("for step" in c.source or ".backward(" in c.source for c in code)


# ----------------------------------------------------------------------------------------------
# Executed at smoke.


def _executed(sb, name: str):
    return nbformat.read(sb.study_dir / f"{name}.ipynb", as_version=4)


def _glued(nb) -> set[str]:
    # myst_nb.glue marks every glued output with its name (displayed or not)
    return {
        o.get("metadata", {}).get("scrapbook", {}).get("name") for c in nb.cells for o in c.get("outputs", [])
    }


@pytest.mark.parametrize("name", study.NOTEBOOKS)
def test_every_notebook_ran_at_smoke(study_book, name):
    nb = _executed(study_book, name)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert nb.metadata["papermill"]["exception"] in (None, False)
    if name in OURS:
        assert nb.metadata["papermill"]["parameters"]["profile"] == "smoke"


def test_key_numbers_are_glued(study_book):
    assert {"acceptance_pct", "n_candidates", "ours_ofdb_h", "ours_fractaldb_h", "fig_fill_rates"} <= _glued(
        _executed(study_book, "01_data")
    )
    assert {"fig_augmentation_bars", "top1_ofdb", "top1_scratch"} <= _glued(
        _executed(study_book, "02_instances_vs_augmentation")
    )
    assert {"scaling_gain", "fig_scaling"} <= _glued(_executed(study_book, "03_category_scaling"))
    assert {"n_claims", "n_agrees", "fig_ft_pilot_0"} <= _glued(_executed(study_book, "04_results"))


def test_the_results_page_reads_the_fine_tuning_pilot(study_book):
    """The fixture's pilot record (conftest) is merged, its plateau and OFDB's lead stated."""
    text = json.dumps(_executed(study_book, "04_results").cells)
    assert "Where the endpoint is read" in text and "still rising" in text
    assert "OFDB's mean lead over scratch, by length: 2 steps +0.25, 4 steps +0.25 points" in text


def test_widget_state_is_stored(study_book):
    state = _executed(study_book, "01_data").metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    models = {m["model_name"] for m in state["state"].values()}
    assert {"IntSliderModel", "LinkModel", "StackModel", "ImageModel"} <= models


def test_parameters_are_recorded(study_book):
    rec = json.loads((study_book.study_dir / study.PARAMETERS_FILE).read_text())
    assert rec["profile"] == "smoke" and rec["seeds"] == study.default_seeds("smoke")
    assert set(OURS) <= set(rec["notebooks"])


def test_book_pages_built_offline(study_book):
    for page in ("intro", "data", "explorer", "results", "reproduce", *(f"study/{n}" for n in OURS)):
        assert (study_book.html / f"{page}.html").is_file(), page
    for page in study_book.html.rglob("*.html"):
        text = page.read_text()
        for attr in ("src=", "href="):
            for chunk in text.split(attr)[1:]:
                url = chunk[1:].split(chunk[0], 1)[0] if chunk[:1] in "\"'" else ""
                if "://" in url and not url.startswith(("http://localhost", "http://127.0.0.1")):
                    # outbound links in prose are fine; scripts, styles and images are not
                    assert not url.endswith((".js", ".css", ".png", ".woff2")), f"{page.name}: {url}"
        assert "cdn.jsdelivr" not in text and "cdnjs" not in text and "unpkg.com" not in text, page.name
    assert (study_book.html / "_static" / "vendor" / "html-manager" / "embed-amd.js").is_file()


def test_second_run_reuses_finished_runs(study_book, capsys):
    before = sorted(p.name for p in study_book.run_root.rglob("summary.json"))
    code = main(
        [
            "study",
            "--profile",
            "smoke",
            "--only",
            "03",
            "--out",
            str(study_book.root / "again"),
            "--data-root",
            str(study_book.data_root),
            "--run-root",
            str(study_book.run_root),
        ]
    )
    assert code == 0
    assert sorted(p.name for p in study_book.run_root.rglob("summary.json")) == before
    assert (study_book.root / "again" / "03_category_scaling.ipynb").is_file()


# ----------------------------------------------------------------------------------------------
# The runner's errors.


def test_failing_cell_names_notebook_and_cell(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom')"),
    ]
    src = tmp_path / "nbs"
    src.mkdir()
    nbformat.write(nb, src / "01_data.ipynb")
    out = tmp_path / "out"
    code = main(["study", "--profile", "smoke", "--notebooks", str(src), "--only", "01", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "01_data" in err and "cell" in err and "ValueError: boom" in err
    partial = nbformat.read(out / "01_data.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in partial.cells for o in c.get("outputs", []))


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "--profile", "huge"],
        ["study", "--profile", "smoke", "--only", "99_nothing"],
        ["study", "--profile", "smoke", "--seeds", "1", "1"],
    ],
)
def test_bad_input_exits_2(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_notebook_is_an_error_naming_it(tmp_path, capsys):
    src = tmp_path / "nbs"
    src.mkdir()
    for name in study.NOTEBOOKS:
        if name != "03_category_scaling":
            shutil.copy(NOTEBOOKS / f"{name}.ipynb", src)
    argv = ["study", "--profile", "smoke", "--notebooks", str(src), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "03_category_scaling.ipynb" in err[0]
    assert not (tmp_path / "o").exists()  # nothing ran
    assert [p.stem for p in study.find_notebooks(src, ["01", "04_results"])] == ["01_data", "04_results"]


# ----------------------------------------------------------------------------------------------
# The book's vendored assets.


def test_vendor_is_pinned_and_idempotent():
    from ofdb_study.study import vendor

    first = vendor.ensure_vendor(REPO / "book")
    stamp = (first / ".pins.json").stat().st_mtime_ns
    assert vendor.ensure_vendor(REPO / "book") == first and (first / ".pins.json").stat().st_mtime_ns == stamp
    assert vendor.PINS["@jupyter-widgets/html-manager"].startswith("1.") and vendor.PINS[
        "mathjax"
    ].startswith("3.")
    static = vendor.static_dir(REPO / "book")
    for rel in (vendor.HTML_MANAGER_STATIC, vendor.REQUIRE_STATIC, vendor.MATHJAX_STATIC):
        assert (static / rel).is_file()
