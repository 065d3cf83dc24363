"""A run is what its name says: readers verify a run folder before reading it
(``runinfo.verify_run``), a finished fine-tuning made on other data is never reused as the planned
run (``runfolder.run_finished``), and ``results unpack`` checks the runs it writes and holds the
output lock.

One smoke fine-tuning from scratch on a tiny Fashion-MNIST is trained once per module; each case
copies it and damages the copy one way (the families: renamed, edited, truncated, out of range).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from study_runs import results_archive

from ofdb_study.cli import main
from ofdb_study.errors import ParamError
from ofdb_study.study import plan
from ofdb_study.train.runinfo import verify_run

NOTEBOOKS = str(Path(__file__).resolve().parents[1] / "notebooks")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fashion):
    """``(run root, the fine-tuning's spec, a copy of the data with every label shifted by 3)``."""
    from fake_data import write_idx

    base = tmp_path_factory.mktemp("verify")
    shifted = base / "shifted"
    shutil.copytree(fashion, shifted)
    for split in ("train", "t10k"):
        path = shifted / f"{split}-labels-idx1-ubyte.gz"
        labels = np.frombuffer(gzip.decompress(path.read_bytes())[8:], np.uint8)
        write_idx(path, (labels + 3) % 10)
    spec = plan.finetune_spec("smoke", "scratch", 0, base / "runs", data_root=fashion)
    plan.train_spec(spec)
    return base / "runs", spec, shifted


def _copy(trained, tmp_path) -> tuple[Path, plan.RunSpec]:
    root, spec, _ = trained
    target = tmp_path / "runs" / "finetune" / spec.path.name
    shutil.copytree(spec.path, target)
    return target, plan.finetune_spec("smoke", "scratch", 0, tmp_path / "runs", data_root=spec.cfg.data_root)


def _edit_json(path: Path, **changes) -> None:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))  # json writes NaN and Infinity as Python reads them back


def test_the_trained_run_verifies_and_its_summary_comes_back(trained):
    _, spec, _ = trained
    summary = verify_run(spec.path, spec.cfg)
    assert summary == json.loads((spec.path / "summary.json").read_text())
    assert spec.finished


#: (damage, words of the one-line error). Each damages a copy of the trained run.
DAMAGES = {
    "no config": ("no config.yaml", lambda run: (run / "config.yaml").unlink()),
    "config edited to another seed": (
        "not to the key",
        lambda run: (run / "config.yaml").write_text(
            (run / "config.yaml").read_text().replace("seed: 0", "seed: 9")
        ),
    ),
    "config not yaml": ("not a readable config", lambda run: (run / "config.yaml").write_text("a: [\n")),
    "summary truncated": (
        "summary.json is not valid JSON",
        lambda run: (run / "summary.json").write_text((run / "summary.json").read_text()[:40]),
    ),
    "summary NaN top-1": (
        "top1_last is not finite",
        lambda run: _edit_json(run / "summary.json", top1_last=float("nan")),
    ),
    "summary huge top-1": (
        "top1_last is above 100",
        lambda run: _edit_json(run / "summary.json", top1_last=1e308),
    ),
    "summary negative loss": (
        "final_loss is negative",
        lambda run: _edit_json(run / "summary.json", final_loss=-1.0),
    ),
    "summary inf seconds": (
        "wall_seconds is not finite",
        lambda run: _edit_json(run / "summary.json", wall_seconds=float("inf")),
    ),
    "summary other steps": ("steps, its config.yaml", lambda run: _edit_json(run / "summary.json", steps=7)),
    "summary other phase": (
        "pretrain summary",
        lambda run: _edit_json(run / "summary.json", phase="pretrain"),
    ),
    "summary a list": ("not a JSON object", lambda run: (run / "summary.json").write_text("[1, 2]")),
    "no metrics": ("metrics.jsonl is missing", lambda run: (run / "metrics.jsonl").unlink()),
    "metrics truncated": (
        "metrics.jsonl line 1 is not valid JSON",
        lambda run: (run / "metrics.jsonl").write_text('{"step": 1, "lo\n{"step": 2}\n'),
    ),
    "metrics NaN loss": (
        "loss is not finite",
        lambda run: (run / "metrics.jsonl").write_text('{"step": 1, "loss": NaN}\n'),
    ),
    "metrics out of order": (
        "step order",
        lambda run: (run / "metrics.jsonl").write_text('{"step": 5}\n{"step": 2}\n'),
    ),
    "manifest not json": (
        "manifest.json is not valid JSON",
        lambda run: (run / "manifest.json").write_text("{"),
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_is_refused_on_read(damage, trained, tmp_path):
    run, spec = _copy(trained, tmp_path)
    words, apply = DAMAGES[damage]
    apply(run)
    with pytest.raises(ParamError) as info:
        verify_run(run, spec.cfg)
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)
    if damage != "no config":  # without config.yaml it is no run folder; the plan's reader says so
        with pytest.raises(ParamError):
            spec.finished  # noqa: B018 - the property verifies


def test_a_run_renamed_to_another_key_or_filed_under_the_other_phase_is_refused(trained, tmp_path):
    run, _ = _copy(trained, tmp_path)
    renamed = run.with_name(run.name[:-10] + "0123456789")
    run.rename(renamed)
    with pytest.raises(ParamError, match="not to the key 0123456789"):
        verify_run(renamed)
    filed = tmp_path / "runs" / "pretrain" / renamed.name
    filed.parent.mkdir()
    shutil.copytree(renamed, filed)
    with pytest.raises(ParamError, match="holds a finetune run's config.yaml, filed under pretrain/"):
        verify_run(filed)


def test_another_run_under_the_planned_name_is_not_read_as_the_planned_one(trained, tmp_path):
    """A run made with other settings, copied under the planned folder's name with its own config."""
    run, spec = _copy(trained, tmp_path)
    other = spec.cfg.replace(seed=9, base_lr=0.5)
    (run / "config.yaml").write_text(__import__("yaml").safe_dump(other.to_dict()))
    with pytest.raises(ParamError, match="not to the key"):
        verify_run(run, spec.cfg)
    run.rename(run.with_name(run.name[:-10] + other.digest()[:10]))
    with pytest.raises(ParamError, match="holds another run than planned .*base_lr, seed"):
        verify_run(run.with_name(run.name[:-10] + other.digest()[:10]), spec.cfg)


def test_a_finished_finetuning_on_other_data_is_not_reused(trained, tmp_path, monkeypatch):
    """Same key (data_root is not part of it); the manifest's dataset_sha256 is compared."""
    root, spec, shifted = trained
    other = plan.finetune_spec("smoke", "scratch", 0, root, data_root=str(shifted))
    assert other.path == spec.path
    monkeypatch.setattr("ofdb_study.train.engine.train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ParamError) as info:
        plan.train_spec(other)
    recorded = json.loads((spec.path / "manifest.json").read_text())["dataset_sha256"]
    err = str(info.value)
    assert err.startswith("data_root: ") and f"--data-root {shifted}" in err and recorded[:16] in err
    assert spec.finished and plan.train_spec(spec)["steps"] == spec.cfg.steps  # the right data: reused


def test_study_plan_refuses_a_downstream_root_whose_data_differs(trained, tmp_path, capsys):
    root, spec, shifted = trained
    argv = ["study", "plan", "--profile", "smoke", "--root", str(root), "--downstream-root", str(shifted)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: downstream_root: ") and err.count("\n") == 1, err
    assert f"--downstream-root {shifted}" in err and "dataset_sha256" in err and "--data-root" not in err
    ok = ["study", "plan", "--profile", "smoke", "--root", str(root), "--downstream-root", spec.cfg.data_root]
    assert main(ok) == 0


@pytest.mark.parametrize("damage", ["no metrics", "summary truncated", "config edited to another seed"])
def test_study_without_training_fails_early_naming_the_file(damage, trained, tmp_path, capsys):
    run, spec = _copy(trained, tmp_path)
    words, apply = DAMAGES[damage]
    apply(run)
    argv = ["study", "--profile", "smoke", "--no-train", "--run-root", str(tmp_path / "runs")]
    argv += [
        "--downstream-root",
        spec.cfg.data_root,
        "--notebooks",
        NOTEBOOKS,
        "--out",
        str(tmp_path / "book"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and str(run) in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "book").exists()


# ---- results unpack -----------------------------------------------------------------------------


def _members(spec) -> dict[str, bytes]:
    name = f"runs/finetune/{spec.path.name}"
    return {
        f"{name}/{f}": (spec.path / f).read_bytes()
        for f in ("config.yaml", "manifest.json", "metrics.jsonl", "summary.json")
    }


def _summary_with(**changes):
    def change(members):
        key = next(n for n in members if n.endswith("summary.json"))
        doc = json.loads(members[key])
        doc.update(changes)
        members[key] = json.dumps(doc).encode()

    return change


def _config_seed(members):
    key = next(n for n in members if n.endswith("config.yaml"))
    members[key] = members[key].replace(b"seed: 0", b"seed: 9")


def _under_pretrain(members):
    for name in list(members):
        members[name.replace("runs/finetune/", "runs/pretrain/")] = members.pop(name)


UNPACK_CASES = {
    "config edited to another seed": (_config_seed, "not to the key"),
    "filed under the other phase": (_under_pretrain, "filed under pretrain/"),
    "summary NaN": (_summary_with(top1_last=float("nan")), "top1_last is not finite"),
    "summary 1e308": (_summary_with(top1_best=1e308), "top1_best is above 100"),
    "summary negative loss": (_summary_with(final_loss=-2.0), "final_loss is negative"),
    "baseline NaN": (
        lambda m: m.__setitem__("runs/baselines/x.json", b'{"softmax": NaN, "n": 1e999}'),
        "runs/baselines/x.json: softmax is not finite",
    ),
    "baseline not an object": (lambda m: m.__setitem__("runs/probes/x.json", b"[1]"), "not a JSON object"),
}


@pytest.mark.parametrize("case", list(UNPACK_CASES))
def test_unpack_refuses_runs_whose_hashes_match_but_are_not_what_they_say(case, trained, tmp_path, capsys):
    _, spec, _ = trained
    members = _members(spec)
    change, words = UNPACK_CASES[case]
    change(members)
    bad = results_archive(members, tmp_path / "bad.tar.gz")
    out = tmp_path / "out"
    assert main(["results", "unpack", str(bad), "--root", str(out), "--data-root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: archive: ") and words in err and err.count("\n") == 1, err
    assert not out.exists() and not (tmp_path / "d").exists()


def test_unpack_of_a_deep_pack_json_is_one_line(tmp_path, capsys):
    deep = b"[" * 100_000 + b"]" * 100_000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("PACK.json")
        info.size = len(deep)
        tar.addfile(info, io.BytesIO(deep))
    bad = tmp_path / "deep.tar.gz"
    bad.write_bytes(gzip.compress(buf.getvalue()))
    assert main(["results", "unpack", str(bad), "--root", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "PACK.json is not valid JSON" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


#: Run in a child: hold the lock of the folder argv[1] until stdin closes.
HOLD_LOCK = """
import sys
from ofdb_study.files import lock_output
lock_output(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_unpack_takes_the_output_lock(trained, tmp_path, capsys):
    """A second writer of the run root (another unpack) is refused while the first holds it, and
    nothing is written; once it is released the unpack goes through and leaves no lock file."""
    _, spec, _ = trained
    archive = results_archive(_members(spec), tmp_path / "ok.tar.gz")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert (
            main(["results", "unpack", str(archive), "--root", str(out), "--data-root", str(tmp_path / "d")])
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith("error: root: ") and "being written by another process" in err, err
        assert "--out" not in err and sorted(p.name for p in out.iterdir()) == [".ofdb_study.lock"]
    finally:
        holder.communicate("", timeout=60)
    assert (
        main(["results", "unpack", str(archive), "--root", str(out), "--data-root", str(tmp_path / "d")]) == 0
    )
    assert (out / "finetune" / spec.path.name / "summary.json").is_file()
    assert not (out / ".ofdb_study.lock").exists() and not (tmp_path / "d").exists()


def test_export_refuses_a_run_whose_summary_is_out_of_range(trained, tmp_path, capsys):
    run, _ = _copy(trained, tmp_path)
    _edit_json(run / "summary.json", top1_last=float("nan"))
    out = tmp_path / "export"
    assert main(["export", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "summary.json: top1_last is not finite" in err and err.count("\n") == 1, err
    assert not out.exists()
