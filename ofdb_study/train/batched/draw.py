"""Drawing fractal images on a device: the patch-mask rule in torch, last-writer tables, texture.

``render.draw`` in patch mode writes a 3x3 block per point in point order, cleared mask bits
writing 0, so a pixel's final value comes from the last point whose block covers it, at a fixed
offset (row r, column c) of that block. ``PatchTables`` lists, for every covered pixel of a point
set, its flat index and ``9 * point + 3 * r + c``; the patch image for mask seed s is then bit
``3 r + c`` of ``patch_mask(s, point)`` times 127 at each listed pixel, scattered into a zero image.
The mask rule is the renderer's (splitmix64 counters, ``kernels.patch_mask``) in int64 torch
arithmetic, so the bytes equal ``render.draw(points, mode="patch", mask_seed=s)`` (the 2D images,
flipped top to bottom) and ``ofdb3d.pattern_view(pixels, size, s)`` (3D views, no flip); tests
check both.

Per-sample choices of the batched pipeline (a fluctuation row, a flip, a pattern seed, a texture
grid, a view) are counter-based draws from the sample seed (``sample_draws``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ...files import usable_cpus
from ...fractals import render
from ..augment import TEXTURE_FIELD, TEXTURE_GRAIN, TEXTURE_GRID
from ..runtime import upload

_GRAY = 127  # the renderer's intensity (kernels._GRAY)
_U64 = np.uint64
_SM_ADD, _SM_MUL1, _SM_MUL2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


# ---- counter-based draws ----------------------------------------------------------------------------
def splitmix64_np(z: np.ndarray) -> np.ndarray:
    """splitmix64 of uint64 values (B,) -> uint64 (B,), as ``kernels._splitmix64``."""
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=_U64) + _U64(_SM_ADD)
        z = (z ^ (z >> _U64(30))) * _U64(_SM_MUL1)
        z = (z ^ (z >> _U64(27))) * _U64(_SM_MUL2)
        return z ^ (z >> _U64(31))


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def splitmix64_t(z: torch.Tensor) -> torch.Tensor:
    """splitmix64 on int64 tensors holding uint64 bits (wrapping arithmetic)."""
    z = z + _signed(_SM_ADD)
    z = (z ^ _srl(z, 30)) * _signed(_SM_MUL1)
    z = (z ^ _srl(z, 27)) * _signed(_SM_MUL2)
    return z ^ _srl(z, 31)


def mask_keys(seeds) -> np.ndarray:
    """The per-image key ``splitmix64(seed)`` of the patch-mask rule, as int64 bits (B,)."""
    return splitmix64_np(np.asarray(seeds, dtype=np.int64).astype(_U64)).view(np.int64)


def sample_draws(seeds: np.ndarray, j: int) -> np.ndarray:
    """Draw ``j`` of each sample: uint64 (B,) from the sample seeds (B,) (counter-based)."""
    key = splitmix64_np(np.asarray(seeds).astype(_U64) ^ _U64(0x5A3C_7E11_D0B5_EED5))
    with np.errstate(over="ignore"):
        return splitmix64_np(key + _U64(j))


def pattern_seeds(seeds: np.ndarray) -> np.ndarray:
    """The random pattern's mask seed of each sample: int64 (B,) in [0, 2**62), from the sample seeds."""
    return (sample_draws(seeds, 2) >> _U64(2)).astype(np.int64)


def bounded(d: np.ndarray, n) -> np.ndarray:
    """Integers in [0, n) from uint64 draws (multiply-high of the top 32 bits); n < 2**32."""
    return (((d >> _U64(32)) * np.asarray(n, dtype=_U64)) >> _U64(32)).astype(np.int64)


def unit(d: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from uint64 draws (the top 53 bits)."""
    return (d >> _U64(11)).astype(np.float64) * 2.0**-53


# ---- last-writer tables ----------------------------------------------------------------------------
class PatchTables:
    """Ragged last-writer tables of point sets drawn in patch mode at ``size`` px, on ``device``.

    Args:
        size: image side in pixels.
        device: where the tables live.
        budget: takes the bytes of each table (``batched``'s memory share).
        flip: flip top to bottom as ``render.draw`` does (2D fractals); False for 3D views
            (``ofdb3d.pattern_view``).

    After ``finish``, ``flat`` is the (N,) int32 flat pixel index (row-major, after the flip if
    any) of every covered pixel of every set, sets concatenated; ``code`` the (N,) int32
    ``9 * point + bit`` of each pixel's last writer; ``offsets`` and ``counts`` the (K,) int64
    start and length of each set's entries (also on the CPU).
    """

    def __init__(self, size: int, device: torch.device, budget, flip: bool = True):
        self.size, self.device, self.budget, self.flip = size, device, budget, flip
        self._flat: list[torch.Tensor] = []
        self._code: list[torch.Tensor] = []

    def __len__(self) -> int:
        return int(self.counts_cpu.shape[0]) if hasattr(self, "counts_cpu") else len(self._flat)

    def add(self, pts: render.Points | tuple[np.ndarray, np.ndarray]) -> int:
        """Build the table of one point set (``render.Points``, or the ``(x, y)`` of
        ``ofdb3d.view_pixels``); returns its row."""
        s, dev = self.size, self.device
        px, py = (pts.x, pts.y) if isinstance(pts, render.Points) else pts
        x = torch.from_numpy(np.asarray(px, dtype=np.int64)).to(dev)
        y = torch.from_numpy(np.asarray(py, dtype=np.int64)).to(dev)
        k = torch.arange(9, device=dev)[:, None]
        col, row = x[None] + 1 + k % 3, y[None] + 1 + k // 3  # (9, n): the block of each point
        ok = (col < s) & (row < s)
        flat = torch.where(ok, ((s - 1 - row) if self.flip else row) * s + col, s * s)  # s * s: off
        code = 9 * torch.arange(x.shape[0], device=dev)[None] + k
        last = torch.full((s * s + 1,), -1, dtype=torch.int64, device=dev)
        last.scatter_reduce_(0, flat.reshape(-1), code.reshape(-1), reduce="amax")
        last = last[: s * s]
        where = torch.nonzero(last >= 0).squeeze(1)
        self.budget.take(where.shape[0] * 8)
        self._flat.append(where.to(torch.int32))
        self._code.append(last[where].to(torch.int32))
        return len(self._flat) - 1

    def finish(self) -> PatchTables:
        counts = np.array([t.shape[0] for t in self._flat], dtype=np.int64)
        self.counts_cpu = counts
        self.offsets_cpu = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.flat = torch.cat(self._flat) if self._flat else torch.zeros(0, dtype=torch.int32)
        self.code = torch.cat(self._code) if self._code else torch.zeros(0, dtype=torch.int32)
        self.counts = torch.from_numpy(counts).to(self.device)
        self.offsets = torch.from_numpy(self.offsets_cpu).to(self.device)
        del self._flat, self._code
        return self

    @property
    def nbytes(self) -> int:
        return int(self.flat.numel() * 8)

    def stamp(self, rows: np.ndarray, seeds) -> torch.Tensor:
        """Patch images of table rows (B,) with mask seeds (B,): uint8 (B, S, S) on the device."""
        s, b = self.size, len(rows)
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts_cpu[rows]
        total = int(counts.sum())
        dev = self.device
        rows_d = upload(torch.from_numpy(rows), dev)
        keys_d = upload(torch.from_numpy(mask_keys(seeds)), dev)
        cnt_d = self.counts[rows_d]
        sample = torch.repeat_interleave(torch.arange(b, device=dev), cnt_d, output_size=total)
        first = torch.cumsum(cnt_d, 0) - cnt_d
        j = torch.arange(total, device=dev) - first[sample] + self.offsets[rows_d][sample]
        code = self.code[j].to(torch.int64)
        point = code // 9
        h = splitmix64_t(keys_d[sample] + point)
        mask = 1 + ((_srl(h, 32) * 511) >> 32)
        val = (((mask >> (code - 9 * point)) & 1) * _GRAY).to(torch.uint8)
        out = torch.zeros(b * s * s, dtype=torch.uint8, device=dev)
        out[self.flat[j].to(torch.int64) + sample * (s * s)] = val
        return out.view(b, s, s)


def threads(fn, items) -> list:
    """``fn`` over ``items`` in threads (numba kernels and PIL decoding release the GIL); order kept."""
    with ThreadPoolExecutor(min(16, usable_cpus())) as pool:
        return list(pool.map(fn, items))


def flip_batch(img: torch.Tensor, which: np.ndarray, device: torch.device) -> torch.Tensor:
    """FractalDB's flips per image: ``which`` (B,) indexes ``render.FLIPS`` (none, tb, lr, both)."""
    w = upload(torch.from_numpy(np.asarray(which, dtype=np.int64)), device)[:, None, None]
    tb, lr, both = (render.FLIPS.index(name) for name in ("tb", "lr", "both"))
    tb, lr = (w == tb) | (w == both), (w == lr) | (w == both)
    img = torch.where(tb, img.flip(-2), img)
    return torch.where(lr, img.flip(-1), img)


def texture_draws(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid sides g (B,) in ``TEXTURE_GRID`` and grids (B, 8, 8) in ``TEXTURE_FIELD`` (only the
    top-left g x g of each is used), from the sample seeds."""
    lo, hi = TEXTURE_GRID
    g = lo + bounded(sample_draws(seeds, 3), hi - lo + 1)
    u = np.stack([unit(sample_draws(seeds, 4 + j)) for j in range(hi * hi)], axis=1)
    grid = TEXTURE_FIELD[0] + (TEXTURE_FIELD[1] - TEXTURE_FIELD[0]) * u
    return g, grid.reshape(-1, hi, hi)


def texture_field_batch(g: torch.Tensor, grid: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``augment.texture_field`` per image: sides g (B,), grids (B, G, G) float64 -> (B, h, w) float64,
    the same operations in the same order (bit-identical to NumPy)."""

    def axis(n: int):
        step = (g.to(torch.float64) - 1) / (n - 1)
        t = torch.arange(n, dtype=torch.float64, device=g.device)[None] * step[:, None]
        t[:, -1] = g - 1
        i0 = torch.minimum(t.to(torch.int64), (g - 2)[:, None])
        return i0, t - i0

    y0, ty = axis(h)
    x0, tx = axis(w)
    gg = grid.shape[-1]
    ty, tx = ty[:, :, None], tx[:, None, :]

    def at(yi, xi):
        rows = grid.gather(1, yi[:, :, None].expand(-1, -1, gg))  # (B, h, G)
        return rows.gather(2, xi[:, None, :].expand(-1, h, -1))  # (B, h, w)

    top = at(y0, x0) * (1 - tx) + at(y0, x0 + 1) * tx
    bottom = at(y0 + 1, x0) * (1 - tx) + at(y0 + 1, x0 + 1) * tx
    return top * (1 - ty) + bottom * ty


def texture_batch(img: torch.Tensor, g: np.ndarray, grid: np.ndarray, gen: torch.Generator) -> torch.Tensor:
    """``augment.random_texture`` on a batch (B, S, S) uint8, grain drawn from ``gen`` (device)."""
    dev = img.device
    b, h, w = img.shape
    field = texture_field_batch(upload(torch.from_numpy(g), dev), upload(torch.from_numpy(grid), dev), h, w)
    lo, hi = TEXTURE_GRAIN
    grain = torch.rand((b, h, w), generator=gen, device=dev, dtype=torch.float64) * (hi - lo) + lo
    shade = torch.clamp(255.0 * field * grain, 1, 255).to(torch.uint8)
    return torch.where(img > 0, shade, torch.zeros_like(shade))
