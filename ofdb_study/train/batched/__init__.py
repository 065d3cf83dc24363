"""The batched pipeline (``--pipeline batched``): whole batches made on the model's device.

``choose_pipeline`` decides, per run, between the loader and this pipeline (``auto``: batched on
CUDA, loader elsewhere, and the loader when the batched pipeline cannot be built: data that do not
fit, a recipe part it lacks; one line on stderr; ``batched`` stops with that line instead);
``check_resumed`` keeps a resumed run on the pipeline it started with.

``DeviceBatches`` takes the loader's sample keys (``runtime.StreamBatches``: (index, sample seed)
per sample), asks a device-resident source (``sources``) for uint8 images (B, C, S, S) and
labels (B,) on the model's device, and augments them there (``transforms.BatchAugment``).
Every pre-training data kind has a source: ``ofdb`` and ``1pfrac`` with every Table-1 option,
``fractaldb``, ImageFolder trees and ``multiview:`` 3D-OFDB views (``default`` and ``pattern``);
fine-tuning sets in memory (Fashion-MNIST, the CIFARs) have one too, used when a fine-tuning asks
for ``--pipeline batched`` (its ``auto`` is the loader).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ...errors import ParamError
from ...seeds import SALT_BATCH_NOISE, SALT_BATCH_PARAMS, mix_seed
from .. import augment
from ..runtime import StreamBatches
from . import transforms
from .sources import batched_source


# ---- the pipeline --------------------------------------------------------------------------------
def resolve_pipeline(cfg, device: torch.device) -> str:
    """``loader`` or ``batched``: the pipeline ``cfg`` asks for on ``device``
    (``TrainConfig.pipeline_on``: ``auto`` is batched for pre-training on CUDA, the loader for
    fine-tuning everywhere; an explicit value is itself)."""
    return cfg.pipeline_on(device.type)


def choose_pipeline(cfg, train_ds, device: torch.device, dd):
    """(pipeline name, (batched source, batch augmentation) or None), agreed by every rank.

    A batched pipeline that cannot be built (the data do not fit, a tree of mixed image sizes, a
    recipe part it lacks) raises its ParamError when asked for explicitly, and falls back to the
    loader (one line on stderr) under ``auto``.
    """
    if resolve_pipeline(cfg, device) == "loader":
        return "loader", None
    parts, error = None, None
    try:
        aug = transforms.BatchAugment.from_timm(augment.train_transform(cfg))
        parts = (batched_source(train_ds, device), aug)
    except ParamError as exc:
        if exc.param != "pipeline":
            raise
        error = exc
    if dd.world_size > 1:  # one rank that cannot, and none does
        ok = torch.tensor(int(parts is not None), device=device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if not int(ok) and error is None:
            parts, error = None, ParamError("pipeline", "another rank cannot run the batched pipeline")
    if error is None:
        return "batched", parts
    if cfg.pipeline != "auto":
        raise error
    if dd.main:
        print(f"{error}; --pipeline auto uses the loader instead", file=sys.stderr)
    return "loader", None


def check_resumed(manifest_path: Path, pipeline: str) -> None:
    """A resumed run must make its batches the way it started, as its manifest.json says (a run
    from before the record: loader)."""
    path = Path(manifest_path)
    if not path.is_file():
        return
    was = json.loads(path.read_text()).get("pipeline", "loader")
    if was != pipeline:
        raise ParamError(
            "pipeline",
            f"{path.parent} was started with the {was} pipeline and this process would use {pipeline}; "
            "resume it where the same pipeline is chosen (auto: batched on CUDA, loader elsewhere)",
        )


class DeviceBatches:
    """The batched pipeline: augmented batches of steps ``start .. stop - 1`` for one rank.

    Each step takes the same sample keys as the loader (``runtime.StreamBatches``, repeated
    augmentation included), asks the source for uint8 images and labels, and augments them with
    generators seeded by (seed, step, rank), so a batch is a function of (seed, step, rank) alone
    and a resumed run continues exactly.

    Args:
        source: a ``sources`` source (``FractalBatches``, ``StoredBatches``, ``PatternViews``).
        augment: a ``transforms.BatchAugment``.
        seed, batch, start, stop, rank, world, repeats: as ``StreamBatches``.
        device: the model's device.

    Yields:
        (float32 images (batch, 3, S, S), int64 labels (batch,)), both on ``device``.
    """

    def __init__(self, source, augment, *, seed, batch, start, stop, device, rank=0, world=1, repeats=1):
        self.source, self.augment, self.device = source, augment, device
        self.seed, self.rank, self.start = seed, rank, start
        self.keys = StreamBatches(len(source), batch, seed, start, stop, rank, world, repeats)

    def __len__(self) -> int:
        return len(self.keys)

    def generators(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        """(parameter generator on the CPU, noise generator on the device) of ``step``."""
        gen = torch.Generator().manual_seed(mix_seed(self.seed, step, self.rank, SALT_BATCH_PARAMS))
        noise = torch.Generator(device=self.device)
        noise.manual_seed(mix_seed(self.seed, step, self.rank, SALT_BATCH_NOISE))
        return gen, noise

    def __iter__(self):
        for step, keys in enumerate(self.keys, start=self.start):
            gen, noise = self.generators(step)
            x, y = self.source.batch(keys, noise)
            yield self.augment(x, gen, noise), y
