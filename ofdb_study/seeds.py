"""The one seed derivation of the package, and the named salts that keep its streams apart.

Every derived seed is ``mix_seed(*parts)``: blake2b over the parts as signed 64-bit integers,
63 bits kept. It is stable across processes, platforms and Python versions (unlike ``hash``), and
parts of different lengths or orders give unrelated seeds. A stream that could otherwise collide
with another one takes a salt from this module as one of its parts, so every salt is written once.
"""

from __future__ import annotations

import hashlib

_MASK63 = (1 << 63) - 1

#: Training: the random state of one optimizer step (Mixup, dropout, drop-path), with (seed, step, rank).
SALT_STEP = 0x57E9
#: Training: the initial weights, with the run seed only.
SALT_INIT = 0x1417
#: Training: the permutation of one epoch of the sample stream, with (seed, epoch).
SALT_ORDER = 0xDA7A
#: Fine-tuning: which K images per class a small labelled subset keeps, with the subset seed.
SALT_SUBSET = 0x5EED
#: OFDB: the patch masks of category c's one image, with (seed, c).
SALT_OFDB_MASK = 0x0FDB
#: FractalDB: the patch masks of category c's weight row w, render r, with (seed, c, w, r).
SALT_FRACTALDB_MASK = 0xFDB0
#: Pre-training's own-task evaluation: held-out render k of category c, with (c, k).
SALT_HELD_OUT = 0xE7A1
#: Batched pipeline: the augmentation parameters of one step's batch (CPU generator), with (seed, step, rank).
SALT_BATCH_PARAMS = 0xBA7C
#: Batched pipeline: the noise of one step's batch (device generator), with (seed, step, rank).
SALT_BATCH_NOISE = 0xB015E


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (each must fit a signed 64-bit integer).

    Args:
        parts: the integers that identify the stream, e.g. ``(seed, step, rank, SALT_STEP)``.

    Returns:
        An int in ``[0, 2**63)``, usable by NumPy, torch and the patch-mask kernel alike.
    """
    data = b"".join(int(p).to_bytes(8, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") & _MASK63
