"""The base install works: the fractal wing and the data commands never load torch, pandas or
matplotlib, and every command's parser builds without them.

Each check runs in a fresh interpreter whose ``sitecustomize`` puts a finder first on
``sys.meta_path`` that refuses those packages and writes down every attempt to import them (an
attempt that the code catches counts too).
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ofdb_study
from ofdb_study.cli import build_parser

BLOCKED = ("torch", "pandas", "matplotlib")
ROOT = Path(ofdb_study.__file__).resolve().parent.parent

_BLOCKER = textwrap.dedent(
    """
    import atexit, json, os, sys

    BLOCKED = {blocked!r}
    attempts = []

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{{name}} is blocked by the base-install test")
            return None

    sys.meta_path.insert(0, Refuse())

    def _report():
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
        with open(os.environ["OFDB_IMPORT_REPORT"], "w") as fh:
            json.dump({{"attempts": attempts, "loaded": loaded}}, fh)

    atexit.register(_report)
    """
)


@pytest.fixture
def blocked_python(tmp_path):
    """Run ``python ARGS`` with the heavy packages blocked; returns (process, import report)."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCKER.format(blocked=BLOCKED))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env["OFDB_STUDY_CACHE"] = str(tmp_path / "cache")
    env["TQDM_DISABLE"] = "1"

    def run(*args: str):
        report = tmp_path / "report.json"
        report.unlink(missing_ok=True)
        env["OFDB_IMPORT_REPORT"] = str(report)
        proc = subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        return proc, json.loads(report.read_text())

    return run


def test_the_blocker_blocks(blocked_python):
    proc, report = blocked_python("-c", "import torch")
    assert proc.returncode != 0 and "blocked" in proc.stderr
    assert report["attempts"] == ["torch"] and report["loaded"] == []


def test_fractal_wing_and_data_commands_run_without_torch_pandas_matplotlib(blocked_python, tmp_path):
    code = (
        "import importlib, pkgutil, ofdb_study.fractals as f\n"
        "names = [m.name for m in pkgutil.walk_packages(f.__path__, 'ofdb_study.fractals.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    proc, report = blocked_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 10  # ifs mt kernels render search png build datasets ofdb3d ...
    assert report == {"attempts": [], "loaded": []}
    small = ["--size", "32", "--points", "500", "--quiet"]
    commands = [
        ["search", "--categories", "3", "--out", "params", "--quiet"],
        ["render", "--params", "params", "--out", "rendered", *small],
        ["build", "ofdb", "--categories", "2", "--out", "built", *small],  # the search via the cache
        ["verify", "built"],
    ]
    for argv in commands:
        proc, report = blocked_python("-m", "ofdb_study", *argv)
        assert proc.returncode == 0, (argv, proc.stderr)
        assert report == {"attempts": [], "loaded": []}, argv
    assert len(list((tmp_path / "params").glob("0*.csv"))) == 3
    assert len(list((tmp_path / "rendered").rglob("*.png"))) == 3
    assert "OK, 2 images" in proc.stdout  # verify of the built tree


def test_every_parser_builds_without_torch_pandas_matplotlib(blocked_python):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"search", "render", "build", "verify", "pretrain", "finetune", "study"} <= set(sub.choices)
    for argv in ([], *([name] for name in sub.choices)):
        proc, report = blocked_python("-m", "ofdb_study", *argv, "--help")
        assert proc.returncode == 0, (argv, proc.stderr)
        assert proc.stdout.startswith("usage: python -m ofdb_study"), argv
        assert report == {"attempts": [], "loaded": []}, argv
