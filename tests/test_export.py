"""Weight export: a finished run loads in timm with no code of ours and gives the run's logits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")


from ofdb_study.cli import main  # noqa: E402
from ofdb_study.config import phase_config  # noqa: E402
from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.study import plan as experiments  # noqa: E402
from ofdb_study.train import models  # noqa: E402
from ofdb_study.train.runinfo import RunInfo, changes_from_profile, export_tag, profile_of, read_run  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fashion):
    """(pre-training run, fine-tuning run from it) at the smoke profile, in one run root."""
    root = tmp_path_factory.mktemp("runs")
    pre = experiments.pretrain_run("smoke", root=root, progress=False)
    fine = experiments.finetune_run("smoke", pre, root=root, data_root=fashion, progress=False)
    return pre, fine


def _run_model(run: Path):
    info = read_run(run)
    model = models.create_model(info.config, info.summary["num_classes"])
    model.load_state_dict(models.read_state_dict(run))
    return model.eval()


def _export(run: Path, out: Path, *extra: str) -> int:
    return main(["export", str(run), "--out", str(out), *extra])


@pytest.mark.parametrize("which", [0, 1], ids=["pretrain", "finetune"])
def test_export_loads_in_timm_with_the_runs_logits(runs, tmp_path, which, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = runs[which]
    out = tmp_path / "export"
    assert _export(run, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    info = read_run(run)
    assert cfg["architecture"] == "vit_tiny_patch16_224"
    assert cfg["pretrained_cfg"]["tag"] == ("ofdb2d_4" if which == 0 else "ofdb2d_4_ft_fashion_mnist")
    assert cfg["num_classes"] == info.summary["num_classes"] == (4 if which == 0 else 10)
    # the smoke shape is not timm's default: the config carries it
    args = cfg["model_args"]
    assert (args["depth"], args["embed_dim"], args["num_heads"], args["patch_size"]) == (1, 32, 2, 8)
    assert list(args["img_size"]) == [32, 32] and args["global_pool"] == "avg"

    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = _run_model(run)(x)
        by_name = timm.create_model(
            cfg["architecture"],
            pretrained=True,
            pretrained_cfg_overlay=dict(cfg["pretrained_cfg"], file=str(out / "model.safetensors")),
            **cfg["model_args"],
        ).eval()
        assert torch.equal(by_name(x), want)
        local = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
        assert torch.equal(local(x), want)
    data = timm.data.resolve_data_config({}, model=local)
    assert data["input_size"] == (3, 32, 32) and data["crop_pct"] == 1.0
    assert tuple(data["mean"]) == tuple(info.config.mean) and tuple(data["std"]) == tuple(info.config.std)


def test_model_card_tells_the_run(runs, tmp_path):
    pre, fine = runs
    assert _export(pre, tmp_path / "e") == 0
    card = (tmp_path / "e" / "README.md").read_text()
    manifest = json.loads((pre / "manifest.json").read_text())
    summary = json.loads((pre / "summary.json").read_text())
    assert card.startswith("---\nlibrary_name: timm\nlicense: mit\n")
    assert "# vit_tiny_patch16_224.ofdb2d_4" in card
    for text in (
        "| categories | 4 (tag `ofdb2d_4`) |",
        "tags: [image-classification, timm, formula-driven-supervised-learning, fractal, ofdb]",
        "| data | 2D-OFDB (one fractal image per category, rendered in memory): `ofdb` |",
        "| seed | 0 |",
        f"`{manifest['dataset_sha256']}`",
        "Profile `smoke` (recorded in config.yaml",
        "| optimizer steps | 2 |",
        f"| images seen | {2 * summary['global_batch']} |",
        "| hardware | cpu",
        f"`{summary['weights_sha256']}`",
        f"`{fine.name}`",  # the downstream run that started from it
        "arXiv:2307.14710",
        "MIT licence",
    ):
        assert text in card, text
    # a fine-tuning run's card names its start and its downstream result
    assert _export(fine, tmp_path / "f") == 0
    card = (tmp_path / "f" / "README.md").read_text()
    top1 = json.loads((fine / "summary.json").read_text())["top1_last"]
    assert "| downstream dataset | fashion-mnist |" in card and f"last {top1:.2f} %" in card


def test_export_refuses_unfinished_runs_and_existing_output(runs, tmp_path, capsys):
    pre = runs[0]
    unfinished = tmp_path / "unfinished"
    shutil.copytree(pre, unfinished)
    (unfinished / "summary.json").unlink()
    assert _export(unfinished, tmp_path / "a") == 2
    assert "not finished" in capsys.readouterr().err and not (tmp_path / "a").exists()

    tampered = tmp_path / "tampered"
    shutil.copytree(pre, tampered)
    doc = json.loads((tampered / "summary.json").read_text())
    (tampered / "summary.json").write_text(json.dumps(dict(doc, weights_sha256="0" * 64)))
    assert _export(tampered, tmp_path / "b") == 2
    assert "final weights" in capsys.readouterr().err and not (tmp_path / "b").exists()

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _export(pre, out) == 0  # a file no output owns is the user's: kept, not in the way
    assert _export(pre, out) == 2
    assert "--force" in capsys.readouterr().err
    assert _export(pre, out, "--force") == 0
    exported = ["README.md", "config.json", "keep.txt", "model.safetensors"]
    assert sorted(p.name for p in out.iterdir()) == exported
    assert (out / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*export-tmp"))

    for target in (pre, pre / "sub"):  # the run itself, or a folder inside it
        assert _export(pre, target, "--force") == 2
        assert "--run input" in capsys.readouterr().err
    assert _export(pre, runs[1], "--force") == 2  # another run's folder: not an export's to replace
    assert "a run" in capsys.readouterr().err and (runs[1] / "summary.json").is_file()


def test_finetune_init_accepts_an_export_folder(runs, tmp_path, fashion):
    pre = runs[0]
    export = tmp_path / "export"
    assert _export(pre, export) == 0
    cfg = phase_config("smoke", "finetune")
    a, b = models.create_model(cfg, 10), models.create_model(cfg, 10)
    models.load_pretrained(a, pre)
    models.load_pretrained(b, export)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if not models.is_head(k))
    out = tmp_path / "ft"
    argv = ["finetune", "--profile", "smoke", "--dataset", "fashion-mnist", "--data-root", fashion]
    assert main(argv + ["--init", str(export), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "manifest.json").read_text())["init"] == str(export)
    assert export_tag(read_run(out)) == "ofdb2d_4_ft_fashion_mnist"  # the export's tag carries over


#: Pre-training data kind -> (pretrain argv after the profile, tag, card lines, card tags beyond
#: image-classification and timm). ``TREE2D`` / ``TREE3D`` are trees built at the fixture's start.
FRACTAL = ["formula-driven-supervised-learning", "fractal"]
KINDS = {
    "fractaldb": (
        ["--data", "fractaldb"],
        "fractaldb_4",
        ["| data | FractalDB (", "| category parameters | the exact FractalDB search (seed 1) |"],
        [*FRACTAL, "fractaldb"],
    ),
    "1pfrac": (
        ["--data", "1pfrac"],
        "1pfrac_4",
        [
            "| data | 1p-frac (perturbations of one fractal, one image per category, generated in memory): "
            "`1pfrac` |",
            "| category parameters | one base fractal drawn with seed 0, perturbed by delta 0.1, sigma 3.5 |",
        ],
        [*FRACTAL, "1p-frac"],
    ),
    "folder": (
        ["--data", "TREE2D", "--categories", "3"],
        "imagefolder_3",
        ["| data | an ImageFolder tree: `TREE2D` |", "| category parameters | the folders of the tree"],
        [],
    ),
    "multiview": (
        ["--data", "multiview:TREE3D", "--categories", "2"],
        "ofdb3d_2",
        ["| data | 3D-OFDB (12 rendered views per category; one random view per sample): `multiview:TREE3D`"],
        [*FRACTAL, "3d-ofdb"],
    ),
}
#: What a card may say only for the kinds named.
ONLY = {
    "imagefolder": {"folder"},
    "ImageFolder tree": {"folder"},
    "exact FractalDB search": {"ofdb", "fractaldb"},
    "1p-frac": {"1pfrac"},
    "3D-OFDB": {"multiview"},
}


@pytest.fixture(scope="module")
def kind_runs(tmp_path_factory, runs, fashion):
    """Data kind -> finished smoke pre-training run (``ofdb`` is ``runs``'), the trees they read,
    and a fine-tuning run from the 1p-frac run."""
    base = tmp_path_factory.mktemp("kinds")
    small = ["--size", "32", "--points", "1500", "--quiet"]
    trees = {"TREE2D": base / "tree2d", "TREE3D": base / "tree3d"}
    assert main(["build", "ofdb", "--categories", "3", *small, "--out", str(trees["TREE2D"])]) == 0
    assert main(["build", "ofdb3d", "--categories", "2", *small, "--out", str(trees["TREE3D"])]) == 0
    out = {"ofdb": runs[0]}
    for kind, (argv, *_) in KINDS.items():
        argv = [
            a.replace("TREE2D", str(trees["TREE2D"])).replace("TREE3D", str(trees["TREE3D"])) for a in argv
        ]
        run = base / kind
        assert main(["pretrain", "--profile", "smoke", *argv, "--out", str(run), "--no-progress"]) == 0
        out[kind] = run
    fine = base / "finetune-1pfrac"
    argv = ["finetune", "--profile", "smoke", "--dataset", "fashion-mnist", "--data-root", fashion]
    assert main([*argv, "--init", str(out["1pfrac"]), "--out", str(fine), "--no-progress"]) == 0
    return out, trees, fine


def _front_tags(card: str) -> list[str]:
    line = next(ln for ln in card.splitlines() if ln.startswith("tags: ["))
    return line[len("tags: [") : -1].split(", ")


@pytest.mark.parametrize("kind", ["ofdb", *KINDS])
def test_every_data_kind_exports_with_its_own_tag_and_card(kind_runs, kind, tmp_path, monkeypatch):
    """The tag, the card's data rows and its tags name the run's data kind, and nothing the card
    says of another kind appears (a 1p-frac run is neither an ImageFolder tree nor the search)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runs, trees, _ = kind_runs
    if kind == "ofdb":
        tag, lines, tags = "ofdb2d_4", ["| data | 2D-OFDB ("], [*FRACTAL, "ofdb"]
    else:
        _, tag, lines, tags = KINDS[kind]
    out = tmp_path / "export"
    assert _export(runs[kind], out) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pretrained_cfg"]["tag"] == tag
    card = (out / "README.md").read_text()
    assert f"# vit_tiny_patch16_224.{tag}\n" in card
    assert f"(tag `{tag}`)" in card
    for line in lines:
        line = line.replace("TREE2D", str(trees["TREE2D"])).replace("TREE3D", str(trees["TREE3D"]))
        assert line in card, line
    assert _front_tags(card) == ["image-classification", "timm", *tags]
    for text, kinds in ONLY.items():
        assert (text in card) == (kind in kinds), text
    model = timm.create_model(f"local-dir:{out}", pretrained=True)
    assert model.num_classes == read_run(runs[kind]).summary["num_classes"]


def test_a_fine_tuning_run_carries_its_pretraining_kind(kind_runs, tmp_path):
    """A run fine-tuned from a 1p-frac run: tagged and described as 1p-frac's downstream run."""
    *_, fine = kind_runs
    assert _export(fine, tmp_path / "e") == 0
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    assert cfg["pretrained_cfg"]["tag"] == "1pfrac_4_ft_fashion_mnist"
    card = (tmp_path / "e" / "README.md").read_text()
    assert _front_tags(card) == ["image-classification", "timm", *FRACTAL, "1p-frac"]
    assert "(1pfrac, 4 categories)" in card and "imagefolder" not in card


def test_a_scratch_fine_tuning_run_is_not_tagged_as_fractal(tmp_path, fashion):
    out = tmp_path / "ft"
    argv = ["finetune", "--profile", "smoke", "--dataset", "fashion-mnist", "--data-root", fashion]
    assert main([*argv, "--init", "scratch", "--out", str(out), "--no-progress"]) == 0
    assert _export(out, tmp_path / "e") == 0
    card = (tmp_path / "e" / "README.md").read_text()
    assert _front_tags(card) == ["image-classification", "timm"]
    assert "# vit_tiny_patch16_224.scratch_ft_fashion_mnist" in card


def test_tags_and_profiles_from_configs(tmp_path):
    def info(**kw):
        phase = kw.pop("phase", "pretrain")
        return RunInfo(tmp_path / "r", phase_config("paper", phase, **kw), {}, {})

    assert export_tag(info(data="ofdb", categories=1000)) == "ofdb2d_1k"
    assert export_tag(info(data="fractaldb", categories=100, augment="pattern")) == "fractaldb_100_pattern"
    assert export_tag(info(data="multiview:/x/ofdb3d-1000-362px", categories=21000)) == "ofdb3d_21k"
    assert export_tag(info(data="/some/tree", categories=10)) == "imagefolder_10"
    assert export_tag(info(data="1pfrac", categories=1000)) == "1pfrac_1k"
    assert export_tag(info(phase="finetune", dataset="cifar100")) == "scratch_ft_cifar100"
    assert export_tag(info(phase="finetune", init=str(tmp_path / "gone" / "checkpoint.pt"))).startswith(
        "pretrained_ft_"
    )
    cfg = phase_config("mini", "pretrain", steps=3, categories=10)
    assert profile_of(cfg) == ("mini", True)
    mini = phase_config("mini", "pretrain")
    assert changes_from_profile(cfg) == (
        "mini",
        {"steps": (mini.steps, 3), "categories": (mini.categories, 10)},
    )
    unrecorded = cfg.replace(profile=None)
    assert profile_of(unrecorded) == (None, False)  # steps differ: no profile fits
    assert profile_of(unrecorded.replace(steps=mini.steps)) == ("mini", False)  # per-run settings only


def _png_tree(root: Path, classes: int, per_class: int = 2) -> Path:
    """An ImageFolder tree of ``classes`` class folders holding small grey PNGs."""
    from PIL import Image

    for c in range(classes):
        d = root / f"{c:05d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (20, 20), 30 * i + 60 * c).save(d / f"{i:02d}.png")
    return root


def test_a_folder_tree_has_the_tree_s_category_count(tmp_path, capsys, monkeypatch):
    """A 3-class tree at ``smoke`` (whose own count is 4): 3 categories recorded, a 3-way head, the
    tag ``imagefolder_3``; a --categories that disagrees is one line naming it, nothing written."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert phase_config("smoke", "pretrain").categories != 3
    tree = _png_tree(tmp_path / "tree", 3)
    run = tmp_path / "run"
    pretrain = ["pretrain", "--profile", "smoke", "--data", str(tree), "--no-progress"]
    assert main([*pretrain, "--out", str(run)]) == 0
    info = read_run(run)
    assert info.config.categories == 3 == info.summary["num_classes"]
    assert export_tag(info) == "imagefolder_3"
    assert _export(run, tmp_path / "e") == 0
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    assert cfg["pretrained_cfg"]["tag"] == "imagefolder_3" and cfg["num_classes"] == 3
    assert "| categories | 3 (tag `imagefolder_3`) |" in (tmp_path / "e" / "README.md").read_text()
    # a run that recorded the profile's count instead exports with its classifier's
    saved = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(saved.replace("categories: 3", "categories: 4"))
    assert read_run(run).config.categories == 4
    assert _export(run, tmp_path / "old") == 0
    old = json.loads((tmp_path / "old" / "config.json").read_text())
    assert old["pretrained_cfg"]["tag"] == "imagefolder_3"
    capsys.readouterr()
    for n in ("4", "2"):
        refused = tmp_path / f"r{n}"
        assert main([*pretrain, "--categories", n, "--out", str(refused)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: categories: --categories {n} disagrees") and err.count("\n") == 1, err
        assert "holds 3 category folders" in err and not refused.exists()
    # the study's runs take the tree's count too
    spec = experiments.pretrain_spec("smoke", str(tree), root=tmp_path / "runs")
    assert spec.cfg.categories == spec.categories == 3
    with pytest.raises(ParamError, match="^categories: --categories 5"):
        experiments.pretrain_spec("smoke", str(tree), categories=5, root=tmp_path / "runs")


def test_a_3d_view_tree_is_never_asked_for_more_categories_than_it_holds(tmp_path, capsys):
    tree = _png_tree(tmp_path / "views", 2)
    data = f"multiview:{tree}"
    spec = experiments.pretrain_spec("smoke", data, root=tmp_path / "runs")
    assert spec.cfg.categories == 2  # the profile's 4, but the tree holds 2
    assert experiments.pretrain_spec("smoke", data, categories=1, root=tmp_path / "runs").cfg.categories == 1
    out = tmp_path / "r"
    argv = ["pretrain", "--profile", "smoke", "--data", data, "--categories", "3", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "categories: --categories 3 disagrees with the 3D-view tree" in err and err.count("\n") == 1
    assert not out.exists()


#: Run as ``python SCRIPT READY GO ARGV...``: the CLI, with the export's writing of the weights
#: held until the file GO exists, after writing READY (so another export can start meanwhile).
HELD_EXPORT = """
import sys, time
from pathlib import Path
import timm.models
from ofdb_study.cli import main

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real = timm.models.save_for_hf

def held(*args, **kwargs):
    ready.write_text("writing")
    for _ in range(1200):
        if go.exists():
            break
        time.sleep(0.1)
    return real(*args, **kwargs)

timm.models.save_for_hf = held
sys.exit(main(sys.argv[3:]))
"""


def test_two_exports_to_one_folder_one_refused_the_other_complete(runs, tmp_path):
    """The first export holds --out while it writes; a second one at the same time exits 2 with
    one line, takes nothing away, and the first's folder is the export, byte for byte."""
    import os
    import subprocess
    import sys
    import time

    pre = runs[0]
    want = tmp_path / "want"
    assert _export(pre, want) == 0
    script = tmp_path / "held.py"
    script.write_text(HELD_EXPORT)
    ready, go, out = tmp_path / "ready", tmp_path / "go", tmp_path / "shared" / "export"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = ["export", str(pre), "--out", str(out)]
    first = subprocess.Popen(
        [sys.executable, str(script), str(ready), str(go), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), first.communicate()
        second = subprocess.run(
            [sys.executable, "-m", "ofdb_study", *argv], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        go.write_text("go")
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1 and "being written by another process" in second.stderr
    assert second.stderr.startswith("error: out: ")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    for name in ("README.md", "config.json", "model.safetensors"):
        assert (out / name).read_bytes() == (want / name).read_bytes(), name
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]  # no staging folder left


def test_the_publishing_guide_lists_every_kind_s_tag():
    from ofdb_study.train.runinfo import KIND_TAG_NAMES

    guide = (Path(__file__).resolve().parents[1] / "book" / "guide" / "publishing.md").read_text()
    for name in KIND_TAG_NAMES.values():
        assert f"`{name}_N`" in guide, name
