"""A helper module (not a test): the script that kills a training run mid-step."""

#: Runs the CLI in a fresh process that SIGKILLs itself inside optimizer step KILL_AT (1-based):
#: after the backward pass, before the weights change. The hook lives here, not in the library.
KILL_SCRIPT = """
import os, signal, sys
from ofdb_study import cli
from ofdb_study.train import engine

KILL_AT = int(sys.argv[1])
real = engine.build_optimization


def dying(*args, **kwargs):
    optimizer, scheduler, mixup, criterion = real(*args, **kwargs)
    step, calls = optimizer.step, []

    def step_or_die(*a, **k):
        calls.append(1)
        if len(calls) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(*a, **k)

    optimizer.step = step_or_die
    return optimizer, scheduler, mixup, criterion


engine.build_optimization = dying
sys.exit(cli.main(sys.argv[2:]))
"""


def killed_then_resumed(args: list[str], kill_at: int, tmp_path) -> tuple[dict, dict]:
    """Run the CLI ``args`` killed inside step ``kill_at`` (checks the kill and that no summary was
    written), resume it, run it again uninterrupted; returns the two summaries (resumed, whole)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from ofdb_study import cli

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(kill_at), *args, "--out", str(killed)],
        env={**os.environ, "TQDM_DISABLE": "1"},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "summary.json").exists()
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["step"] < kill_at
    assert cli.main([*args, "--out", str(killed), "--resume"]) == 0
    assert cli.main([*args, "--out", str(whole)]) == 0
    return tuple(json.loads((p / "summary.json").read_text()) for p in (killed, whole))
