"""``benchmarks/gpu_check.sh --cpu-dry-run``: every step reported with its file, and a failed step
named while the others still run (``GPU_CHECK_FAIL``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
#: Each step and the file it writes into OUTDIR (None: it prints only).
STEP_FILES = {
    "preflight": "preflight.json",
    "tests": "gpu-tests.xml",
    "search": None,
    "tiny": "tiny.json",
    "base": "base.json",
    "memory": "memory.json",
    "hours": None,
    "pilot": "pilot.json",
}


def _dry_run(out: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out), "--cpu-dry-run"],
        env={**os.environ, "OFDB_PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _steps(out: Path) -> dict:
    return {s["step"]: s for s in json.loads((out / "steps.json").read_text())["steps"]}


@pytest.mark.slow
def test_the_dry_run_reports_every_step_with_its_file(tmp_path):
    done = _dry_run(tmp_path / "out")
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    steps = _steps(out)
    assert list(steps) == list(STEP_FILES)
    assert all(s["status"] == "ok" and s["exit"] == 0 for s in steps.values())
    for name, file in STEP_FILES.items():
        assert f"== {name} (at " in done.stdout
        if file:
            assert (out / file).stat().st_size > 0, file
    assert len(list(out.iterdir())) <= 8
    assert (out / "gpu_check.log").read_text() == done.stdout
    assert "every step passed" in done.stdout
    tiny = json.loads((out / "tiny.json").read_text())
    assert tiny["precision"] == "fp32 (CPU)"
    kinds = {m["what"] for m in tiny["measurements"] if m["what"].startswith("batched pipeline alone, ")}
    assert kinds == {f"batched pipeline alone, {k}" for k in ("default", "pattern", "fractaldb")}
    assert all(p["ok"] for p in json.loads((out / "memory.json").read_text())["probes"])


def test_a_failed_step_is_named_and_the_rest_still_run(tmp_path):
    out = tmp_path / "out"
    done = _dry_run(out, GPU_CHECK_FAIL="preflight", GPU_CHECK_ONLY="preflight,memory")
    assert done.returncode == 1
    assert "== STEP preflight FAILED: failed (exit 1)" in done.stdout
    assert "made to fail by GPU_CHECK_FAIL=preflight" in done.stdout
    assert "gpu_check.sh: FAILED steps: preflight" in done.stdout
    steps = _steps(out)
    assert list(steps) == ["preflight", "memory"]
    assert steps["preflight"]["exit"] == 1 and steps["memory"]["status"] == "ok"
    assert (out / "memory.json").exists() and not (out / "preflight.json").exists()


def test_a_step_over_its_time_is_stopped_and_named(tmp_path):
    """A step killed by its timeout reads as timed out; the script goes on to the summary."""
    text = SCRIPT.read_text()
    assert text.count("run_step ") >= len(STEP_FILES)
    fake = tmp_path / "gpu_check.sh"
    # the preflight's 20 s limit cut to 1 s (3 s in a dry run) on a command that sleeps
    fake.write_text(
        text.replace('cd "$(dirname "$(realpath "$0")")/.."', f"cd {REPO}").replace(
            'run_step preflight 20 "$PY" benchmarks/preflight.py',
            'run_step preflight 1 "$PY" -c "import time; time.sleep(30)"; : benchmarks/preflight.py',
        )
    )
    done = subprocess.run(
        ["bash", str(fake), str(tmp_path / "out"), "--cpu-dry-run"],
        env={**os.environ, "OFDB_PYTHON": sys.executable, "GPU_CHECK_ONLY": "preflight"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "== STEP preflight FAILED: timed out after 3 s" in done.stdout
    assert _steps(tmp_path / "out")["preflight"]["status"] == "timed out after 3 s"


def test_the_script_leaves_the_callers_out_alone():
    """The device machine's results folder is the caller's ``$OUT``; the script never assigns it."""
    text = SCRIPT.read_text()
    assert "OUT=" not in text.replace("OUTDIR=", "")
    assert "pip install" not in text
