"""The run folder: its files, the provenance written beside the weights, and overwrite rules.

A run folder holds config.yaml, manifest.json, metrics.jsonl, checkpoint.pt (written atomically)
and summary.json (written last: its presence means the run finished).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import torch
import yaml

from ..config import TrainConfig
from ..errors import ParamError
from ..files import package_versions, prepare_output

RUN_FILES = ("config.yaml", "manifest.json", "metrics.jsonl", "checkpoint.pt", "summary.json")
#: What a run owns in its folder (``files.prepare_output``): its files and their temporaries.
RUN_OWNED = (*RUN_FILES, ".*.tmp")
#: Distributions recorded in a run's manifest besides ``files.package_versions``' own.
TRAIN_PACKAGES = ("torch", "torchvision", "timm")


# ---- run folder -------------------------------------------------------------------------------
def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names and raw bytes, sorted by name)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict:
    """The package versions a run's manifest records (``files.package_versions`` plus torch's)."""
    return package_versions(*TRAIN_PACKAGES)


def prepare_out(out: Path, cfg: TrainConfig, resume: bool, force: bool) -> None:
    """The package's output policy for a run folder (``files.prepare_output`` over ``RUN_OWNED``);
    a resumed run must have been run with the same config."""
    if not prepare_output(out, what="a run", owned=RUN_OWNED, resume=resume, force=force):
        return
    saved = out / "config.yaml"
    if saved.is_file():
        old = TrainConfig.from_dict(yaml.safe_load(saved.read_text()))
        if old.digest() != cfg.digest():
            diff = [k for k, v in cfg.result_dict().items() if old.result_dict().get(k) != v]
            raise ParamError("resume", f"{out} was run with other settings ({', '.join(diff)})")
