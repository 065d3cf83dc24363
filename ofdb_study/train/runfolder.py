"""The run folder: its files, the provenance written beside the weights, and overwrite rules.

A run folder holds config.yaml, manifest.json, metrics.jsonl, checkpoint.pt (written atomically)
and summary.json (written last: its presence means the run finished).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path

import torch
import yaml

from ..config import TrainConfig
from ..errors import ParamError

RUN_FILES = ("config.yaml", "manifest.json", "metrics.jsonl", "checkpoint.pt", "summary.json")


# ---- run folder -------------------------------------------------------------------------------
def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names and raw bytes, sorted by name)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "timm", "numpy", "numba", "ofdb-study"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def prepare_out(out: Path, cfg: TrainConfig, resume: bool, force: bool) -> None:
    """Refuse to touch an existing run unless resume (same config) or force (our files removed)."""
    if out.exists() and not out.is_dir():
        raise ParamError("out", f"{out} exists and is not a folder")
    present = [f for f in RUN_FILES if (out / f).exists()]
    if not present:
        return
    if resume:
        saved = out / "config.yaml"
        if saved.is_file():
            old = TrainConfig.from_dict(yaml.safe_load(saved.read_text()))
            if old.digest() != cfg.digest():
                diff = [k for k, v in cfg.result_dict().items() if old.result_dict().get(k) != v]
                raise ParamError("resume", f"{out} was run with other settings ({', '.join(diff)})")
        return
    if force:
        for f in RUN_FILES:
            (out / f).unlink(missing_ok=True)
        return
    raise ParamError("out", f"{out} already holds a run; pass --resume to continue or --force to replace it")
