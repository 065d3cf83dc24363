"""The reproduce page's hours (``book/_ext/plan_hours.py``): what the directive renders is what
``study.plan_report`` computes and ``study plan`` prints, and the wall times on one GPU, under
torchrun and as cluster jobs agree with each other."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes

from ofdb_study.cli import main
from ofdb_study.errors import ParamError
from ofdb_study.study import plan, plan_report

REPO = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ext = _load("_plan_hours", REPO / "book" / "_ext" / "plan_hours.py")


@pytest.fixture(scope="module")
def hours():
    return ext.plans(ext.PROFILES, 8)


@pytest.fixture(scope="module")
def rendered():
    return ext.render(ext.PROFILES, 8)


def _cells(table: nodes.table) -> list[list[str]]:
    return [[entry.astext() for entry in row.findall(nodes.entry)] for row in table.findall(nodes.row)]


def test_the_table_is_what_plan_report_computes(hours, rendered, tmp_path):
    (table,) = [n for n in rendered if isinstance(n, nodes.table)]
    head, *body = _cells(table)
    assert head == ext.columns(8)
    assert [r[0] for r in body] == list(ext.PROFILES) == ["paper", "paper-short", "paper-21k"]
    for cells, name in zip(body, ext.PROFILES):
        h = plan_report.profile_hours(name, 8)
        assert cells == ext.row(name, h) == ext.row(name, hours[name])
        specs = plan.plan(name, root=tmp_path)
        assert cells[1] == str(len(specs)) and cells[2] == f"{sum(s.images for s in specs):,}"
        if name != "paper-21k":
            times = (h.one_gpu, h.one_gpu_loader, h.torchrun, h.critical_path, h.cluster)
            assert cells[3:] == [plan_report.duration(t) for t in times]


@pytest.mark.parametrize("name", ["paper", "paper-short"])
def test_the_figures_are_the_measured_ones(hours, name):
    h = hours[name]
    tiny = plan_report.MEASURED[plan_report._PAPER_VIT_TINY, False]
    assert h.sources == [tiny] and tiny.card == "NVIDIA H200" and tiny.precision == "bf16"
    images = sum(r.spec.images for r in h.runs)
    assert h.one_gpu == pytest.approx(images / tiny.images_per_s)
    fed = sum(r.spec.images for r in h.runs if r.spec.phase == "finetune")  # the loader feeds these
    assert h.one_gpu_loader == pytest.approx(h.one_gpu + fed / tiny.bound - fed / tiny.images_per_s)


@pytest.mark.parametrize("name", ["paper", "paper-short"])
def test_one_gpu_eight_gpus_and_the_cluster_agree(hours, name):
    h = hours[name]
    assert h.torchrun == pytest.approx(h.one_gpu / 8)  # linear scaling
    longest = max(
        r.seconds + (next(p.seconds for p in h.runs if p.spec.path == r.spec.needs) if r.spec.needs else 0.0)
        for r in h.runs
    )
    assert h.critical_path == pytest.approx(longest)
    # list scheduling: never below the work per GPU or the longest chain, never above their sum
    assert max(h.critical_path, h.one_gpu / 8) <= h.cluster + 1e-6
    assert h.cluster <= h.one_gpu / 8 + h.critical_path + 1e-6
    runs = list(h.runs)
    assert plan_report.spread(runs, 1) == pytest.approx(h.one_gpu)  # one GPU: one after another
    assert plan_report.spread(runs, len(runs)) == pytest.approx(h.critical_path)
    assert h.one_gpu_loader >= h.one_gpu


def test_a_profile_without_a_measured_figure_says_so(hours, rendered):
    h = hours["paper-21k"]
    assert h.unmeasured == ["vit_base_patch16_224 at 224 px"] and h.sources == []
    assert (h.one_gpu, h.torchrun, h.critical_path, h.cluster) == (None,) * 4
    assert ext.row("paper-21k", h)[3:] == [ext.UNMEASURED] * 5
    (figures,) = [n for n in rendered if isinstance(n, nodes.bullet_list)]
    text = figures.astext()
    assert "paper-21k: no measured figure for vit_base_patch16_224 at 224 px" in text
    assert "8,448 images/s on one NVIDIA H200 with bf16 autocast (paper, paper-short)" in text
    assert "bench_train.py" in text and "3,300 images/s" in text
    assert "set precision fp16" in text  # the profiles' precision beside the figure's


@pytest.mark.parametrize("name", ["paper", "paper-short", "paper-21k"])
def test_study_plan_prints_the_same_wall_times(name, hours, tmp_path, capsys):
    assert main(["study", "plan", "--profile", name, "--run-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.split("wall time of the missing runs", 1)[1]
    h = hours[name]
    if h.one_gpu is None:
        assert "no measured figure for vit_base_patch16_224" in out
        return
    cells = ext.row(name, h)
    assert re.search(rf"one GPU: {re.escape(cells[3])} \({re.escape(cells[4])} where the loader", out)
    assert f"under torchrun, each run's steps split across them: {cells[5]}" in out
    assert f"{cells[6]} along the critical path" in out and f"{cells[7]} spread over 8 GPUs" in out


def test_the_assumptions_are_on_the_page(rendered):
    text = " ".join(n.astext() for n in rendered if isinstance(n, nodes.paragraph))
    assert "linear scaling" in text and "lower bound" in text and "critical path" in text
    assert "training steps only" in text


def test_spread_schedules_a_small_plan():
    def run(name, seconds, needs=None):
        spec = SimpleNamespace(path=Path(name), needs=None if needs is None else Path(needs), label=name)
        return plan_report.RunHours(spec, None, seconds, seconds)

    runs = [run("a", 10), run("b", 10), run("fa", 5, "a"), run("fb", 5, "b"), run("s", 3)]
    assert plan_report.critical_path(runs) == 15
    assert plan_report.spread(runs, 1) == 33
    assert plan_report.spread(runs, 2) == 18  # a, b; then fa, fb; then s
    assert plan_report.spread(runs, 3) == 15
    assert plan_report.spread(runs[2:], 2) == 8  # finished pre-trainings count as done
    with pytest.raises(ParamError) as info:
        plan_report.spread(runs, 0)
    assert info.value.param == "gpus"


def test_the_reproduce_page_uses_the_directive():
    page = (REPO / "book" / "reproduce.md").read_text()
    assert "```{plan-hours}" in page and "(plan-hours)=" in page
    config = (REPO / "book" / "_config.yml").read_text()
    assert re.search(r"^\s+plan_hours: _ext$", config, re.M)


def test_the_directive_renders_and_names_a_bad_profile():
    from docutils.core import publish_doctree
    from docutils.parsers.rst import directives

    directives.register_directive("plan-hours", ext.PlanHoursDirective)
    doc = publish_doctree(".. plan-hours::\n   :profiles: paper-short\n   :gpus: 4\n")
    (table,) = list(doc.findall(nodes.table))
    head, body = _cells(table)
    assert head == ext.columns(4) and body == ext.row(
        "paper-short", plan_report.profile_hours("paper-short", 4)
    )
    bad = publish_doctree(
        ".. plan-hours::\n   :profiles: paper nope\n", settings_overrides={"report_level": 5}
    )
    (message,) = list(bad.findall(nodes.system_message))
    assert "unknown profile 'nope'" in message.astext() and not list(bad.findall(nodes.table))
