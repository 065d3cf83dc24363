"""Where and how a run executes, reproducibly: device, processes, seeds and the sample stream.

The data order is a function of (seed, position in the sample stream), so any step of any rank
can be recomputed without saved iterator state (see ``ofdb_study.train.engine`` for the whole scheme).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from ..errors import TrainingError
from ..seeds import SALT_ORDER, mix_seed


# ---- device and processes ---------------------------------------------------------------------
def resolve_device() -> torch.device:
    """cuda (this process's LOCAL_RANK card), then mps, then cpu; resolved once per run."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def _barrier(d: Dist) -> None:
    if d.world_size > 1:
        dist.barrier()


# ---- seeding and data order -----------------------------------------------------------------
def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and every torch device's generator (once per run or step)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_host(seed: int) -> None:
    """Seed Python's, numpy's and torch's CPU generator: the host streams a sample draws from.

    The same CPU streams as ``seed_all``, without its device part: ``torch.manual_seed`` also queues
    a lazy CUDA seeding that records a traceback each call, which cost a third of a mini run's
    wall time when done per sample.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(int(seed))


class StreamBatches:
    """Batch sampler over the seeded sample stream: yields [(index, sample_seed), ...] per step.

    Position ``p`` of the stream is in epoch ``e = p // n`` at offset ``o = p % n`` and holds
    index ``perm_e[o // repeats]`` (``perm_e`` a permutation seeded by (seed, e)) with the sample
    seed ``mix_seed(seed, p)``. With ``repeats = k > 1`` (repeated augmentation, as timm's
    ``RepeatAugSampler`` and DeiT's ``RASampler``) each drawn index fills ``k`` consecutive
    positions, each augmented with its own seed, and an epoch of ``n`` positions covers the first
    ``ceil(n / k)`` indices of its permutation; ``repeats`` 0 or 1 is the plain stream.

    Args:
        n: dataset length.
        batch: per-process batch; global batch = batch * world.
        seed: run seed.
        start, stop: steps to cover.
        rank, world: this process's share.
        repeats: consecutive positions per drawn index (0 or 1: none).
    """

    def __init__(
        self,
        n: int,
        batch: int,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
        repeats: int = 1,
    ):
        self.n, self.batch, self.seed, self.start, self.stop = n, batch, seed, start, stop
        self.rank, self.world = rank, world
        self.repeats = max(1, int(repeats))
        self._perms: dict[int, np.ndarray] = {}

    def index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            rng = np.random.default_rng(mix_seed(self.seed, epoch, SALT_ORDER))
            self._perms[epoch] = rng.permutation(self.n)
        return int(self._perms[epoch][offset // self.repeats])

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        g = self.batch * self.world
        for step in range(self.start, self.stop):
            first = step * g + self.rank * self.batch
            yield [(self.index_at(p), mix_seed(self.seed, p)) for p in range(first, first + self.batch)]


class Keyed(Dataset):
    """Wraps a dataset so that item (index, seed) is loaded with all RNGs seeded by ``seed``."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        i, s = key
        seed_host(s)
        try:
            return self.base[i]
        except OSError as exc:  # PIL: a truncated or unreadable image in a folder tree
            samples = getattr(self.base, "samples", None)
            what = samples[i][0] if samples is not None else f"item {i}"
            raise TrainingError(f"data: {what} cannot be read ({exc}); replace or remove it") from None


def upload(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device`` without stalling the host: pinned and non-blocking on CUDA
    (a plain ``.to`` waits for every queued kernel), as is elsewhere."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
