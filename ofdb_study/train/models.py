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


#: Mimetic initialisation (Trockman & Kolter, ICML 2023): per head, W_q^T W_k ~ alpha Z + beta I;
#: per layer, the value-projection product ~ alpha Z - beta I; Z uniform with variance 1 / D.
MIMETIC_QK = (0.7, 0.7)
MIMETIC_VPROJ = (0.4, 0.4)


def _factors(target, k: int):
    """(left, right), each (D, k): the rank-k factors of ``target`` (D, D) from its SVD,
    left @ right.T = the best rank-k approximation of ``target``."""
    import torch

    u, s, vh = torch.linalg.svd(target)
    root = s[:k].sqrt()
    return u[:, :k] * root, vh[:k].T * root


def _uniform(d: int, gen):
    """A (d, d) float64 draw, uniform on [-sqrt(3 / d), sqrt(3 / d)] (variance 1 / d)."""
    import torch

    return (torch.rand(d, d, generator=gen, dtype=torch.float64) * 2 - 1) * (3.0 / d) ** 0.5


def mimetic_init_(model, seed: int) -> None:
    """Mimetic initialisation of a timm ViT's attention, in place, from ``seed``.

    For every block and head h, the query and key weights (k x D each, k = D / heads) are set so
    that the attention score's bilinear form ``W_q,h^T W_k,h`` (x W_q^T (x W_k^T)^T = x W_q^T W_k x^T)
    is the rank-k SVD approximation of ``alpha Z + beta I`` (``MIMETIC_QK``), a fresh Z per head;
    the value and output projections (D x D) are set so that the product they apply,
    ``W_v^T W_proj^T``, equals ``alpha Z - beta I`` (``MIMETIC_VPROJ``), a fresh Z per block.
    Z is uniform on [-sqrt(3 / D), sqrt(3 / D)] (variance 1 / D). Biases and every other weight
    keep the model's own initialisation. No data is read.

    Raises:
        ParamError: the model has no timm ``Attention`` blocks with a fused ``qkv``.
    """
    import torch

    blocks = [b for b in getattr(model, "blocks", []) if hasattr(getattr(b, "attn", None), "qkv")]
    if not blocks:
        raise ParamError("init", "mimetic initialisation needs a timm ViT with qkv attention blocks")
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for block in blocks:
            attn = block.attn
            d = attn.qkv.in_features
            heads = attn.num_heads
            k = d // heads

            eye = torch.eye(d, dtype=torch.float64)
            w = attn.qkv.weight  # (3D, D): rows [0, D) query, [D, 2D) key, [2D, 3D) value
            a, b = MIMETIC_QK
            for h in range(heads):
                left, right = _factors(a * _uniform(d, gen) + b * eye, k)
                w[h * k : (h + 1) * k] = left.T.to(w.dtype)
                w[d + h * k : d + (h + 1) * k] = right.T.to(w.dtype)
            a, b = MIMETIC_VPROJ
            left, right = _factors(a * _uniform(d, gen) - b * eye, d)
            w[2 * d :] = left.T.to(w.dtype)
            attn.proj.weight.copy_(right.to(attn.proj.weight.dtype))
