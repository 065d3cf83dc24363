"""The run folder: its files, the provenance written beside the weights, and overwrite rules.

A run folder holds

* ``config.yaml``: the ``TrainConfig`` (every setting, operational ones included);
* ``manifest.json``: provenance (git commit, package versions, device, resolved batch and learning
  rates, the data's sha256, the command line);
* ``metrics.jsonl``: one JSON record per logged step;
* ``checkpoint.pt``: model, optimizer, scheduler and progress, written atomically. It holds only
  tensors and plain Python values, so ``torch.load(..., weights_only=True)`` reads it;
* ``summary.json``: written last, so its presence means the run finished.

``RunFolder`` is the one place that reads and writes them; ``engine.train`` only calls it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from ..config import Resolved, TrainConfig
from ..errors import ParamError
from ..files import (
    COMMON_FILES,
    atomic_write_bytes,
    atomic_write_text,
    package_versions,
    prepare_output,
    release_output,
)
from .runinfo import (
    CHECKPOINT,
    CONFIG,
    MANIFEST,
    METRICS,
    SUMMARY,
    finetune_data_sha256,
    read_config,
    run_finished,
    verify_run,
)

__all__ = ["RunFolder", "finetune_data_sha256", "run_finished", "verify_run"]

RUN_FILES = (CONFIG, MANIFEST, METRICS, CHECKPOINT, SUMMARY)
#: What a run owns in its folder (``files.prepare_output``): its files and their temporaries.
RUN_OWNED = (*RUN_FILES, *COMMON_FILES)
#: Distributions recorded in a run's manifest besides ``files.package_versions``' own.
TRAIN_PACKAGES = ("torch", "torchvision", "timm")


# ---- small pieces -----------------------------------------------------------------------------
def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names and raw bytes, sorted by name)."""
    return state_sha256(model.state_dict())


def state_sha256(state: dict) -> str:
    """``weights_sha256`` of a state dict (a checkpoint's ``model``)."""
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
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


def manifest(
    cfg: TrainConfig,
    *,
    device: torch.device,
    world_size: int,
    resolved: Resolved,
    data_hash: str,
    num_classes: int,
) -> dict:
    """The provenance of a run: what ``manifest.json`` holds."""
    init = cfg.init if cfg.phase == "finetune" and cfg.init not in (None, "") else "scratch"
    return {
        "git_commit": _git_commit(),
        "versions": _versions(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "seed": cfg.seed,
        "world_size": world_size,
        "resolved": resolved.to_dict(),
        "dataset_sha256": data_hash,
        "num_classes": num_classes,
        "init": str(init),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rng_states() -> dict:
    """The global RNG states of ``random``, NumPy and torch, as plain values and tensors."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": np_state["state"]["key"].tolist(),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }


@dataclass
class Progress:
    """Where a run stands: the last finished step (1-based count), the best top-1 so far (percent)
    and its step, and the training seconds spent (summed over resumes)."""

    step: int = 0
    top1_best: float | None = None
    best_step: int | None = None
    train_seconds: float = 0.0


def run_inputs(cfg: TrainConfig) -> list[tuple[str, str]]:
    """The folders a run reads (its ImageFolder tree, its ``--init`` run), for ``check_apart``."""
    from ..fractals.kinds import data_path

    found = []
    data = data_path(cfg.data)
    if data and Path(data).exists():
        found.append(("data", data))
    if cfg.init not in (None, "", "scratch", "timm"):
        init = Path(cfg.init)
        # a run's checkpoint stands for its run folder; a loose checkpoint file for itself
        if init.is_file() and (init.parent / CONFIG).is_file():
            init = init.parent
        found.append(("init", str(init)))
    return found


# ---- the folder -------------------------------------------------------------------------------
class RunFolder:
    """The files of one run (see the module docstring). Only rank 0 writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def prepare(self, cfg: TrainConfig, *, resume: bool, force: bool) -> None:
        """The package's output policy (``files.prepare_output`` over ``RUN_OWNED``): refuse an
        existing run unless ``resume`` (same config digest) or ``force`` (the run's files are
        removed). Writes nothing else."""
        out = self.path
        if not prepare_output(
            out, owned="run", resume=resume, force=force, inputs=run_inputs(cfg), lock=True
        ):
            return
        saved = out / CONFIG
        if saved.is_file():
            old = read_config(saved, param="resume")
            if old.digest() != cfg.digest():
                new, was = cfg.result_dict(), old.result_dict()
                diff = sorted(k for k in new.keys() | was.keys() if new.get(k) != was.get(k))
                raise ParamError("resume", f"{out} was run with other settings ({', '.join(diff)})")

    def summary(self) -> dict | None:
        """The finished run's summary, or None while it has not finished."""
        path = self.file(SUMMARY)
        return json.loads(path.read_text()) if path.is_file() else None

    def start(self, cfg: TrainConfig, provenance: dict, *, from_step: int) -> None:
        """Write config.yaml and manifest.json, and cut metrics.jsonl back to ``from_step``
        (records of steps after the checkpoint a resumed run starts from are dropped)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.file(CONFIG), yaml.safe_dump(cfg.to_dict(), sort_keys=True))
        atomic_write_text(self.file(MANIFEST), json.dumps(provenance, indent=2))
        metrics = self.file(METRICS)
        kept = []
        if metrics.is_file():
            lines = [ln for ln in metrics.read_text(errors="replace").splitlines() if ln.strip()]
            for i, ln in enumerate(lines):
                try:
                    rec = json.loads(ln)
                    step = rec["step"]
                except (ValueError, KeyError, TypeError):
                    if i == len(lines) - 1:  # the line a killed process was writing
                        break
                    raise ParamError(
                        "resume", f"{metrics} line {i + 1} is not a metrics record (corrupt); use --force"
                    ) from None
                if step <= from_step:
                    kept.append(ln)
        atomic_write_text(metrics, "".join(ln + "\n" for ln in kept))

    def log(self, record: dict) -> None:
        """Append one record (a JSON object with at least ``step``) to metrics.jsonl."""
        with open(self.file(METRICS), "a") as f:
            f.write(json.dumps(record) + "\n")

    def save_checkpoint(
        self, model, optimizer, scheduler, progress: Progress, cfg: TrainConfig, num_classes: int
    ) -> None:
        """Write checkpoint.pt atomically: weights, optimizer and scheduler states, progress, the
        RNG states (for inspection: a resume re-seeds from the step), the config and class count."""
        doc = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": progress.step,
            "top1_best": progress.top1_best,
            "best_step": progress.best_step,
            "train_seconds": progress.train_seconds,
            "rng": rng_states(),
            "config": cfg.to_dict(),
            "num_classes": num_classes,
        }
        atomic_write_bytes(self.file(CHECKPOINT), lambda f: torch.save(doc, f))

    def load_checkpoint(self, model, optimizer, scheduler) -> Progress:
        """Restore the states saved by ``save_checkpoint``; ``Progress()`` when there is none."""
        path = self.file(CHECKPOINT)
        if not path.is_file():
            return Progress()
        try:
            doc = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or not a checkpoint: torch raises several types
            why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise ParamError("resume", f"{path} is not a readable checkpoint ({why}); use --force") from None
        model.load_state_dict(doc["model"])
        optimizer.load_state_dict(doc["optimizer"])
        scheduler.load_state_dict(doc["scheduler"])
        return Progress(doc["step"], doc["top1_best"], doc["best_step"], doc["train_seconds"])

    def write_summary(self, summary: dict) -> None:
        """Write summary.json atomically: the last file of a finished run."""
        atomic_write_bytes(self.file(SUMMARY), lambda f: f.write(json.dumps(summary, indent=2).encode()))
        release_output(self.path)
