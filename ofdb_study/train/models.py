"""Models: ``timm.create_model`` from a config (never pretrained weights), checkpoint loading.

Loading a pre-trained checkpoint into a fine-tuning model drops the classifier head (its class
count differs), loads everything else and refuses, with a ParamError, any other tensor whose shape
does not fit (a different width, depth, patch or image size).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ParamError, check_positive_int
from .runinfo import CHECKPOINT, CONFIG

HEAD_PREFIXES = ("head.", "fc.", "classifier.")


def check_model_args(cfg) -> None:
    """Validate model settings before anything is built or written."""
    import timm

    if not timm.is_model(cfg.model):
        raise ParamError("model", f"unknown timm model {cfg.model!r}")
    check_positive_int("img_size", cfg.img_size)
    check_positive_int("patch_size", cfg.patch_size)
    if cfg.img_size % cfg.patch_size:
        raise ParamError("img_size", f"{cfg.img_size} is not divisible by the patch size {cfg.patch_size}")
    if cfg.embed_dim is not None and cfg.num_heads is not None and cfg.embed_dim % cfg.num_heads:
        raise ParamError("embed_dim", f"{cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")


def create_model(cfg, num_classes: int):
    """A randomly initialised timm ViT for ``cfg``: images (B, 3, S, S) -> logits (B, num_classes)."""
    import timm

    check_model_args(cfg)
    kwargs = dict(
        num_classes=num_classes,
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        drop_path_rate=cfg.drop_path,
    )
    for key in ("depth", "embed_dim", "num_heads", "global_pool"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    return timm.create_model(cfg.model, pretrained=False, **kwargs)


def is_head(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


#: Weights file of an export folder (``python -m ofdb_study export``), as timm and the hub name it.
EXPORT_WEIGHTS = "model.safetensors"


def read_state_dict(path: str | os.PathLike) -> dict:
    """The model weights of a run folder or its checkpoint.pt, an export folder or its model.safetensors.

    A run folder's ``checkpoint.pt`` is preferred over a ``model.safetensors`` beside it; a bare
    state dict saved with ``torch.save`` is accepted too. ``.pt`` files are read with
    ``torch.load(weights_only=True)``: only tensors and plain Python values are unpickled, so a
    checkpoint from elsewhere cannot run code. Anything else is refused.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        ckpt, export = path / CHECKPOINT, path / EXPORT_WEIGHTS
        if not ckpt.is_file() and export.is_file():
            path = export
        else:
            path = ckpt
    if not path.is_file():
        raise ParamError("init", f"no checkpoint at {path} (give a run folder, an export folder or a file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a checkpoint: torch raises many types (KeyError, IndexError, UnpicklingError)
        raise ParamError(
            "init", f"{path} cannot be read as tensors and plain values (torch.load with weights_only=True)"
        ) from None
    state = doc["model"] if isinstance(doc, dict) and "model" in doc else doc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ParamError("init", f"{path} holds no state dict of tensors")
    if path.name == CHECKPOINT and (path.parent / CONFIG).is_file():
        _check_final(path.parent, state)
    return state


def _check_final(run: Path, state: dict) -> None:
    """A run folder's checkpoint is its final weights: the run has finished and its summary names
    these weights (a checkpoint written over later, or a run still training, is refused)."""
    from .runfolder import state_sha256
    from .runinfo import read_run

    info = read_run(run)  # ParamError naming a corrupt summary.json or config.yaml
    if info.summary is None:
        raise ParamError("init", f"{run} has not finished (no summary.json); start from a finished run")
    if state_sha256(state) != info.summary.get("weights_sha256"):
        raise ParamError("init", f"{run}/{CHECKPOINT} does not hold the final weights its summary.json names")


def check_fits(model, state: dict) -> dict:
    """The non-head tensors of ``state``; ParamError if any is missing or has another shape."""
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if not is_head(k)}
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in keep.items()
        if k in own and own[k].shape != v.shape
    ]
    missing = [k for k in own if not is_head(k) and k not in keep]
    unexpected = [k for k in keep if k not in own]
    if wrong or missing or unexpected:
        parts = []
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong[:3]))
        if missing:
            parts.append("missing: " + ", ".join(missing[:3]))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:3]))
        raise ParamError("init", "checkpoint does not fit the model (" + " | ".join(parts) + ")")
    return keep


def load_pretrained(model, path: str | os.PathLike) -> None:
    """Load a checkpoint's weights into ``model`` except the classifier head (kept at its init).

    ``path``: anything ``read_state_dict`` reads (a run folder, an export folder, or their files).
    """
    keep = check_fits(model, read_state_dict(path))
    model.load_state_dict(keep, strict=False)
