"""Bad input over the commands: one line on stderr naming the parameter, exit code 2, no
traceback, and nothing written where the command would have written.

Each case is ``(argv, message)`` (``|a|b``: the message holds a or b); ``OUT`` in argv is replaced by a path under the test's folder
that must not exist afterwards, ``FILE`` by an existing plain file, ``PARAMS`` by a folder of one
valid category CSV.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ofdb_study.cli import main

CASES = [
    # sizes that cannot fit, checked before anything is allocated or written
    (
        ["search", "--categories", "2", "--size", "10000000", "--out", "OUT"],
        "size: a 10,000,000 px canvas would need",
    ),
    (
        ["search", "--categories", "2", "--points", "100000000000", "--out", "OUT"],
        "points: 100,000,000,000 points",
    ),
    (["render", "--params", "PARAMS", "--size", "1000000", "--out", "OUT"], "size: a 1,000,000 px image"),
    (["build", "ofdb", "--categories", "2", "--points", "100000000000", "--out", "OUT"], "points:"),
    # category counts past the five-digit names
    (["search", "--categories", "1000000000000", "--out", "OUT"], "categories: must be at most 100,000"),
    (["build", "fractaldb", "--categories", "100001", "--out", "OUT"], "categories: must be at most 100,000"),
    (
        ["pretrain", "--profile", "smoke", "--categories", "1000000000", "--out", "OUT"],
        "categories: must be an integer >= 1 and at most 100,000",
    ),
    # zero, negative and huge training settings
    (
        ["pretrain", "--profile", "smoke", "--batch-size", "100000000", "--out", "OUT"],
        "batch_size: one batch of",
    ),
    (["pretrain", "--profile", "smoke", "--steps", "0", "--out", "OUT"], "steps: must be an integer >= 1"),
    (
        ["pretrain", "--profile", "smoke", "--batch-size", "-4", "--out", "OUT"],
        "batch_size: must be an integer",
    ),
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--train-per-class", "0", "--out", "OUT"],
        "train_per_class",
    ),
    (
        ["pretrain", "--profile", "smoke", "--set", "base_lr=inf", "--out", "OUT"],
        "base_lr: --set base_lr= expects",
    ),
    (["pretrain", "--profile", "smoke", "--set", "steps=two", "--out", "OUT"], "steps: --set steps= expects"),
    (["pretrain", "--profile", "smoke", "--augment", "sideways", "--out", "OUT"], "augment:"),
    (["pretrain", "--profile", "smoke", "--resume", "--force", "--out", "OUT"], "force: pass --resume"),
    # an explicit --data-root is where the data must be (no fall back to the system copy)
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--dataset", "fashion-mnist"]
        + ["--data-root", "OUT/data", "--out", "OUT/run"],
        "data_root: --data-root",
    ),
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--dataset", "cifar10"]
        + ["--data-root", "FILE", "--out", "OUT"],
        "is a file, not a folder",
    ),
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--dataset", "cifar100"]
        + ["--data-root", "PARAMS", "--out", "OUT"],
        "does not hold cifar100",
    ),
    # paths of the wrong kind
    (["render", "--params", "FILE", "--out", "OUT"], "params:"),
    (["pretrain", "--profile", "smoke", "--out", "FILE"], "exists and is not a folder"),
    (["study", "plan", "--profile", "smoke", "--root", "FILE"], "root: "),
    (["vendor", "--book", "OUT"], "book: "),
    (
        ["study", "--profile", "smoke", "--workers", "0", "--notebooks", "OUT", "--out", "OUT/study"],
        "workers:",
    ),
    (["study", "--profile", "smoke", "--notebooks", "OUT", "--out", "OUT/study"], "notebooks: "),
]


def _setting_command(key: str) -> list[str]:
    """The command that reads TrainConfig setting ``key``: fine-tuning's own settings are given to
    ``finetune``, 1p-frac's to a pre-training on 1p-frac, every other to ``pretrain``."""
    from ofdb_study.config import FINETUNE_ONLY

    if key in FINETUNE_ONLY:
        return ["finetune", "--profile", "smoke", "--init", "scratch"]
    if key in ("delta", "sigma"):
        return ["pretrain", "--profile", "smoke", "--data", "1pfrac"]
    return ["pretrain", "--profile", "smoke"]


def _numeric_settings() -> dict[str, str]:
    """Every numeric TrainConfig setting and its declared type (``int``, ``float``, ``tuple``)."""
    import dataclasses

    from ofdb_study.config import TrainConfig

    out = {}
    for f in dataclasses.fields(TrainConfig):
        base = str(f.type).removesuffix(" | None")
        if base in ("int", "float") or base.startswith("tuple"):
            out[f.name] = "tuple" if base.startswith("tuple") else base
    return out


#: The bad values of each numeric type: negative, huge, NaN, infinite, the wrong type.
BAD_VALUES = {
    "int": ["-1", "10" + "0" * 30, "nan", "inf", "two", "1.5"],
    "float": ["-1", "1e300", "nan", "inf", "two"],
    "tuple": ["[-1, 2]", "[1e300, 1e301]", "[.nan, 1]", "[.inf, 1]", "[a]", "[]", "[1.0, 0.5, 0.1, 0.2]"],
}
#: Settings that 0 is no value for (a count of at least one, a rate or scale above zero).
ZERO_IS_BAD = (
    "img_size patch_size depth embed_dim num_heads categories render_size render_points eval_per_category "
    "sigma train_per_class test_per_class crop_pct base_lr batch_size steps log_every checkpoint_every "
    "eval_batch_size"
).split()

#: Every numeric setting through --set at every bad value: one line naming the setting.
SETTING_CASES = [
    ([*_setting_command(key), "--set", f"{key}={value}", "--out", "OUT"], f"error: {key}: ")
    for key, kind in _numeric_settings().items()
    for value in BAD_VALUES[kind] + (["0"] if key in ZERO_IS_BAD else [])
]
#: The flags of the same settings: 0 where it is no value, negative, huge, the wrong type.
FLAG_CASES = [
    ([*_setting_command(key), flag, value, "--out", "OUT"], message)
    for key, flag in [
        ("steps", "--steps"),
        ("seed", "--seed"),
        ("batch_size", "--batch-size"),
        ("checkpoint_every", "--checkpoint-every"),
        ("num_workers", "--num-workers"),
        ("categories", "--categories"),
        ("train_per_class", "--train-per-class"),
    ]
    for value, message in [
        ("-1", f"error: {key}: "),
        ("1" + "0" * 30, f"error: {key}: "),
        ("nan", f"argument {flag}: invalid int value"),
        ("two", f"argument {flag}: invalid int value"),
    ]
    + ([("0", f"error: {key}: ")] if key in ZERO_IS_BAD else [])
]
#: The cases issue 32 names, one by one.
NAMED_CASES = [
    (
        ["pretrain", "--profile", "smoke", "--set", "base_lr=-1", "--out", "OUT"],
        "base_lr: must be a finite number",
    ),
    (["pretrain", "--profile", "smoke", "--set", "base_lr=1e300", "--out", "OUT"], "base_lr: must be"),
    (
        ["pretrain", "--profile", "smoke", "--set", "phase=finetune", "--out", "OUT"],
        "phase: is set by the command",
    ),
    (
        ["pretrain", "--profile", "smoke", "--set", "profile=mini", "--out", "OUT"],
        "profile: is set by --profile",
    ),
    (["pretrain", "--profile", "smoke", "--set", "scale=[0.5]", "--out", "OUT"], "scale: must be 2 finite"),
    (
        ["pretrain", "--profile", "smoke", "--set", "scale=[1.0,0.1]", "--out", "OUT"],
        "scale: must be [low, high]",
    ),
    (["pretrain", "--profile", "smoke", "--set", "ratio=[0,0]", "--out", "OUT"], "ratio: must be 2 finite"),
    (
        ["pretrain", "--profile", "smoke", "--set", "num_heads=0", "--out", "OUT"],
        "num_heads: must be an integer",
    ),
    (["pretrain", "--profile", "smoke", "--set", "weight_decay=-5", "--out", "OUT"], "weight_decay: must be"),
    (["pretrain", "--profile", "smoke", "--set", "mixup=-1", "--out", "OUT"], "mixup: must be"),
    (["pretrain", "--profile", "smoke", "--set", "cutmix=-0.5", "--out", "OUT"], "cutmix: must be"),
    (["pretrain", "--profile", "smoke", "--set", "drop_path=2", "--out", "OUT"], "drop_path: must be"),
    (["pretrain", "--profile", "smoke", "--set", "drop_path=-1", "--out", "OUT"], "drop_path: must be"),
    (["pretrain", "--profile", "smoke", "--set", "depth=0", "--out", "OUT"], "depth: must be an integer"),
    (["pretrain", "--profile", "smoke", "--seed", str(2**64), "--out", "OUT"], "seed: must be an integer"),
    (
        ["pretrain", "--profile", "smoke", "--set", f"seed={2**64}", "--out", "OUT"],
        "seed: must be an integer",
    ),
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--seed", str(2**64), "--out", "OUT"],
        "seed: must be an integer",
    ),
    (
        [
            "finetune",
            "--profile",
            "smoke",
            "--init",
            "scratch",
            "--set",
            f"subset_seed={2**64}",
            "--out",
            "OUT",
        ],
        "subset_seed: must be an integer",
    ),
    (["pretrain", "--profile", "smoke", "--steps", str(10**18), "--out", "OUT"], "steps: must be an integer"),
    (
        ["pretrain", "--profile", "smoke", "--set", f"eval_per_category={10**18}", "--out", "OUT"],
        "eval_per_category: must be an integer",
    ),
    (
        ["pretrain", "--profile", "smoke", "--set", "threads=100000", "--out", "OUT"],
        "threads: must be an integer",
    ),
    # one source per setting, and only the settings the command reads
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--set", "init=FILE", "--out", "OUT"],
        "init: given twice: --init scratch and --set init=",
    ),
    (
        ["pretrain", "--profile", "smoke", "--seed", "1", "--set", "seed=2", "--out", "OUT"],
        "seed: given twice",
    ),
    (
        ["pretrain", "--profile", "smoke", "--set", "steps=2", "--set", "steps=3", "--out", "OUT"],
        "steps: --set",
    ),
    (
        ["pretrain", "--profile", "smoke", "--data", "ofdb", "--set", "delta=5", "--out", "OUT"],
        "delta: only 1pfrac",
    ),
    (
        ["pretrain", "--profile", "smoke", "--data", "fractaldb", "--set", "sigma=2", "--out", "OUT"],
        "sigma: only",
    ),
    (["pretrain", "--profile", "smoke", "--set", "sigma=-1", "--out", "OUT"], "sigma: must be"),
    (
        ["pretrain", "--profile", "smoke", "--set", "dataset=cifar100", "--out", "OUT"],
        "dataset: only fine-tuning",
    ),
    (
        ["finetune", "--profile", "smoke", "--init", "scratch", "--set", "render_size=64", "--out", "OUT"],
        "render_size: only pre-training",
    ),
    # the executor's numbers, for plan as for run
    (
        [
            "study",
            "plan",
            "--profile",
            "smoke",
            "--executor",
            "slurm",
            "--cpus-per-gpu",
            "-1",
            "--root",
            "OUT",
        ],
        "cpus_per_gpu: --cpus-per-gpu must be",
    ),
    (
        [
            "study",
            "plan",
            "--profile",
            "smoke",
            "--executor",
            "slurm",
            "--nodes-per-run",
            "0",
            "--root",
            "OUT",
        ],
        "nodes_per_run: --nodes-per-run must be",
    ),
    (["study", "plan", "--profile", "smoke", "--time", "0", "--root", "OUT"], "time: --time must be"),
    (["study", "plan", "--profile", "smoke", "--max-parallel", "0", "--root", "OUT"], "max_parallel: "),
    (
        ["study", "plan", "--profile", "smoke", "--seeds", str(2**64), "--root", "OUT"],
        "seed: must be an integer",
    ),
]
#: The data commands' shared numbers: seeds past 64 bits, unbounded renders and workers.
DATA_CASES = [
    (
        ["build", "ofdb", "--categories", "2", "--seed", str(2**64), "--out", "OUT"],
        "seed: must be an integer",
    ),
    (
        ["build", "1pfrac", "--categories", "2", "--seed", str(2**64), "--out", "OUT"],
        "seed: must be an integer",
    ),
    (["render", "--params", "PARAMS", "--seed", str(2**64), "--out", "OUT"], "seed: must be an integer"),
    (
        ["build", "fractaldb", "--categories", "2", "--renders", str(10**18), "--out", "OUT"],
        "renders: must be",
    ),
    (["build", "ofdb", "--categories", "2", "--workers", "100000", "--out", "OUT"], "workers: must be"),
    (["search", "--categories", "2", "--workers", "100000", "--out", "OUT"], "workers: must be"),
    (["verify", "--against", "PARAMS", "--workers", "100000"], "workers: must be"),
    (["verify", "--against", "PARAMS", "--workers", "0"], "workers: must be"),
    (["study", "--profile", "smoke", "--out", "FILE", "--run-root", "OUT"], "out: "),
    (["search3d", "--categories", "2", "--points", str(10**30), "--out", "OUT"], "points: "),
    (["build", "ofdb3d", "--categories", "2", "--size", str(10**30), "--out", "OUT"], "size: "),
    (["build", "ofdb3d", "--categories", "2", "--points", str(10**12), "--out", "OUT"], "points: "),
]


def _data_flag_cases() -> list:
    """Every numeric flag of the data commands (as their parsers declare them) at a negative
    value, NaN, infinity and the wrong type: one line naming the flag or its parameter."""
    import argparse

    from ofdb_study.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = {
        "search": ["search", "--categories", "2"],
        "search3d": ["search3d", "--categories", "2"],
        "render": ["render", "--params", "PARAMS"],
        "verify": ["verify", "--against", "PARAMS"],
        **{
            f"build {k}": ["build", k, "--categories", "2"] for k in ("ofdb", "fractaldb", "1pfrac", "ofdb3d")
        },
    }
    out = []
    for name, argv in commands.items():
        parser = sub.choices[name.split()[0]]
        for action in parser._actions:
            if not action.option_strings or action.type in (None, str) or action.dest == "categories":
                continue
            flag = action.option_strings[-1]
            for value in ("-1", "nan", "inf", "two"):
                if value == "-1" and action.dest == "a_weight":
                    continue  # a negative weight on a mirrors the fractal: a value, not an error
                tail = [] if name == "verify" else ["--out", "OUT"]
                out.append(([*argv, flag, value, *tail], f"|{action.dest}: |{flag}|{flag[2:]}: "))
    return out


DATA_FLAG_CASES = _data_flag_cases()
CASES += NAMED_CASES + SETTING_CASES + FLAG_CASES + DATA_CASES + DATA_FLAG_CASES


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0][:3] + c[0][-4:-2]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder\n")
    params = tmp_path / "params"
    params.mkdir()
    (params / "00000.csv").write_text("0.5,0.0,0.0,0.5,0.0,0.0,0.5\n0.5,0.0,0.0,0.5,0.5,0.0,0.5\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = [
        a.replace("OUT", str(out)).replace("FILE", str(plain)).replace("PARAMS", str(params)) for a in argv
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    alternatives = message.split("|")[1:] if message.startswith("|") else [message]  # "|a|b": a or b
    assert any(m in err for m in alternatives), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("kind", ["fifo", "late"])
def test_verify_against_refuses_odd_parameter_files_without_reading_them(kind, tmp_path, capsys):
    """A FIFO named like a category would block the read; a name past 99999 would start a search
    that long: both are refused up front."""
    import os

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    if kind == "fifo":
        os.mkfifo(theirs / "00000.csv")
    else:
        (theirs / "123456.csv").write_text("0.5,0,0,0.5,0,0,1\n")
    assert main(["verify", "--against", str(theirs)]) == 2
    err = capsys.readouterr().err
    assert ("not a plain file" if kind == "fifo" else "named 00000-99999") in err and err.count("\n") == 1


def test_study_without_training_names_the_unfinished_runs(tmp_path, capsys):
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    out = tmp_path / "book" / "study"
    argv = ["study", "--profile", "smoke", "--no-train", "--run-root", str(tmp_path / "runs")]
    assert main([*argv, "--notebooks", str(notebooks), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no_train: 23 of 23 runs of the smoke plan are not finished" in err and err.count("\n") == 1
    assert not (tmp_path / "book").exists() and not (tmp_path / "runs").exists()


#: Run in a child: hold the lock of the folder argv[1] until stdin closes.
HOLD_LOCK = """
import sys
from ofdb_study.files import lock_output
lock_output(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("there", ["search", "run", "input", "locked"])
def test_a_refused_pretrain_output_costs_no_data_preparation(there, tmp_path, monkeypatch, capsys):
    """An ``--out`` the output policy refuses, or one another process is writing, is refused
    before the search cache is filled: the cache folder stays empty, and ``--out`` keeps exactly
    what it held."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("OFDB_STUDY_CACHE", str(cache))
    out = tmp_path / "out"
    out.mkdir()
    holder = None
    if there == "search":  # another kind's files, which --force never removes
        (out / "00000.csv").write_text("0.5,0,0,0.5,0,0,1\n")
        extra, message = ["--force"], "holds a search (00000.csv)"
    elif there == "run":  # a run, and neither --resume nor --force
        (out / "config.yaml").write_text("phase: pretrain\n")
        extra, message = [], "already holds a run"
    elif there == "input":  # the run's own input, in --out
        extra, message = ["--data", str(out / "tree"), "--force"], "holds the --data input"
        (out / "tree" / "00000").mkdir(parents=True)
    else:  # another process writes --out
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "locked"
        extra, message = [], "is being written by another process"
    try:
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        argv = ["pretrain", "--profile", "smoke", "--out", str(out), "--no-progress", *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error: out: ") and err.count("\n") == 1, err
        assert not list(cache.iterdir())
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    finally:
        if holder is not None:
            holder.communicate("", timeout=60)


NOTEBOOKS = str(Path(__file__).resolve().parents[1] / "notebooks")


@pytest.mark.parametrize("command", ["study", "study run"])
@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_study_names_its_downstream_root_flag(command, where, tmp_path, capsys):
    """A --downstream-root that does not hold the fine-tuning data is refused before anything
    trains or is written, naming the flag the user typed (not finetune's --data-root)."""
    root = tmp_path / "fm"
    if where == "empty":
        root.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if command == "study":
        argv = ["study", "--profile", "smoke", "--notebooks", NOTEBOOKS, "--out", str(tmp_path / "book")]
        argv += ["--run-root", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data")]
    else:
        argv = ["study", "run", "--profile", "smoke", "--executor", "local", "--root", str(tmp_path / "runs")]
    assert main([*argv, "--downstream-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: downstream_root: --downstream-root {root} ") and err.count("\n") == 1, err
    assert ("does not exist" if where == "missing" else "does not hold fashion-mnist") in err
    assert "data_root" not in err and "--data-root" not in err and "--download" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_tree_class_folder_without_images_is_one_line(tmp_path, capsys):
    tree = tmp_path / "tree"
    (tree / "00000").mkdir(parents=True)
    out = tmp_path / "run"
    assert main(["pretrain", "--profile", "smoke", "--data", str(tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: data: {tree}: Found no valid file") and err.count("\n") == 1, err
    assert not out.exists()
