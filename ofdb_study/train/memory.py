"""How much device memory a ViT training step takes, and the micro-batch that fits a card.

The estimate counts what a step keeps at its peak: the weights, their gradients and the optimizer's
state (AdamW two float32 moments, SGD one momentum), and the activations saved for the backward pass.
Per image and block a transformer saves about ``34 * s * d`` bytes in 16-bit arithmetic (Korthikanti
et al. 2022, "Reducing activation recomputation in large transformer models", without the attention
matrices, which the fused attention kernels of torch do not keep), ``s`` tokens of width ``d``; in
float32 twice that. For ViT-Base/16 at 224 px that is 59 MiB an image in 16-bit and 118 MiB in
float32, so the ``paper-21k`` fine-tuning (float32, batch 1,024) needs about 120 GiB and cannot take
one step on an 80 GB card; the engine then accumulates the gradients of micro-batches
(``micro_batch``) and the step is the same step, its batch unchanged.

The estimate errs high by design (the peak of one step on a card is checked by
``benchmarks/memory_probe.py``, which prints both).
"""

from __future__ import annotations

import torch

#: Bytes saved per image, token and width unit in one block: 16-bit autocast, and float32.
ACTIVATION_BYTES = {"16-bit": 34, "fp32": 68}
#: Bytes per parameter besides the activations: weights and gradients in float32, plus the optimizer.
STATE_BYTES = {"adamw": 16, "adam": 16, "sgd": 12, "momentum": 12}
#: Workspace, allocator slack and the CUDA context, besides the estimate (bytes).
OVERHEAD = 3 * 2**30
#: The share of a card's memory a step may plan for.
USABLE = 0.9


def vit_shape(model) -> tuple[int, int, int]:
    """(blocks, tokens, width) of a timm VisionTransformer."""
    blocks = len(model.blocks)
    tokens = model.patch_embed.num_patches + getattr(model, "num_prefix_tokens", 1)
    return blocks, tokens, model.embed_dim


def step_bytes(model, batch: int, precision: str, opt: str, device_type: str = "cuda") -> int:
    """The estimated peak bytes of one training step of ``model`` on ``batch`` images.

    Args:
        model: a timm VisionTransformer.
        batch: the images of one forward and backward pass (a micro-batch where the step has several).
        precision: ``TrainConfig.precision``; only CUDA runs autocast, so on the CPU it is float32.
        opt: the optimizer's name (``TrainConfig.opt``).
        device_type: where the step runs.
    """
    blocks, tokens, width = vit_shape(model)
    sixteen = device_type == "cuda" and precision in ("bf16", "fp16")
    per_image = blocks * tokens * width * ACTIVATION_BYTES["16-bit" if sixteen else "fp32"]
    params = sum(p.numel() for p in model.parameters())
    return params * STATE_BYTES.get(opt, 16) + batch * per_image + OVERHEAD


def micro_batch(model, batch: int, precision: str, opt: str, memory: int | None) -> int:
    """The largest divisor of ``batch`` whose step fits ``USABLE`` of ``memory`` bytes (the whole
    batch where ``memory`` is None, the CPU or a card whose size is not known, and for a model
    that is not a ViT, which the estimate does not cover)."""
    if memory is None or not all(hasattr(model, k) for k in ("blocks", "patch_embed", "embed_dim")):
        return batch
    for n in range(1, batch + 1):
        if batch % n:
            continue
        if step_bytes(model, batch // n, precision, opt) <= USABLE * memory:
            return batch // n
    return 1


def device_memory(device: torch.device) -> int | None:
    """The total memory of a CUDA device in bytes, None elsewhere."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory
