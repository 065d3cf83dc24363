"""Pillow's image operations on uint8 batches (B, C, H, W), with per-image arguments, in torch.

Each function is the batched form of what timm's per-image pipeline calls in Pillow, following
Pillow's arithmetic (its resampling filters and 22-bit fixed-point coefficients, lookup tables,
``Image.blend`` in float32 with truncation, the SMOOTH filter's summation order, the affine
sampler of ``Image.transform``), so that for the same arguments the bytes are Pillow's. The tests
(tests/test_batched.py) compare every function with Pillow; the rotation may differ by one gray
level on a few pixels where floating-point rounding of the sample position falls the other way.
Arguments that vary per image are (B,) tensors on x's device; nothing here waits for the device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..runtime import upload

_PREC = 22  # Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2)


# ---- Pillow resampling filters (Resample.c), as functions of a float64 tensor ----------------------
def _bicubic(x: torch.Tensor) -> torch.Tensor:
    a = -0.5
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def _bilinear(x: torch.Tensor) -> torch.Tensor:
    x = x.abs()
    return torch.where(x < 1.0, 1.0 - x, torch.zeros_like(x))


#: Pillow's resampling filters by name: (filter function, support in source pixels at scale 1).
FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


def resize_coefficients(length: torch.Tensor, out: int, kind: str = "bicubic", taps: int | None = None):
    """Pillow's fixed-point coefficients for resizing spans of ``length`` (B,) pixels to ``out``.

    ``taps`` (the widest support, ``support_taps``) may be given so that nothing waits for the device.

    Returns:
        (first (B, out) int64 first source pixel of each output pixel, relative to the span;
        k (B, out, T) int32 coefficients, zero past each pixel's support).
    """
    filt, unit = FILTERS[kind]
    length = length.to(torch.float64)
    scale = length / out
    fscale = torch.clamp(scale, min=1.0)
    support = unit * fscale
    if taps is None:
        taps = support_taps(length.cpu(), out, kind)
    center = (torch.arange(out, dtype=torch.float64, device=length.device)[None] + 0.5) * scale[:, None]
    first = torch.clamp(torch.floor(center - support[:, None] + 0.5), min=0)
    last = torch.minimum(torch.floor(center + support[:, None] + 0.5), length[:, None])
    n = last - first
    t = torch.arange(taps, dtype=torch.float64, device=length.device)
    w = filt(((t + first[..., None]) - center[..., None] + 0.5) * (1.0 / fscale)[:, None, None])
    w = torch.where(t < n[..., None], w, torch.zeros_like(w))
    total = w[..., 0]
    for i in range(1, taps):  # Pillow sums in order
        total = total + w[..., i]
    w = torch.where(total[..., None] != 0, w / total[..., None], w)
    k = torch.where(w < 0, -0.5 + w * (1 << _PREC), 0.5 + w * (1 << _PREC)).trunc()
    return first.to(torch.int64), k.to(torch.int32)


def support_taps(length: torch.Tensor, out: int, kind: str) -> int:
    """Pillow's coefficient count (2 ceil(support) + 1) for the longest of the spans (B,) (CPU)."""
    longest = float(length.max()) if length.numel() else 1.0
    return int(math.ceil(FILTERS[kind][1] * max(longest / out, 1.0))) * 2 + 1


def _resample_last_axis(x, start, length, out: int, kind: str, taps: int):
    """Resample the spans [start, start + length) of the last axis of uint8 x (B, ..., N) to ``out``.

    Per tap, one gather and one multiply-add in int32 (exact, so the order does not matter), then
    Pillow's rounding and ``clip8``.
    """
    first, k = resize_coefficients(length, out, kind, taps)
    b, n = x.shape[0], x.shape[-1]
    view = (b,) + (1,) * (x.dim() - 2) + (out,)
    shape = x.shape[:-1] + (out,)
    t = torch.arange(k.shape[-1], device=x.device)
    cols = torch.minimum(first[..., None] + t, length.view(b, 1, 1) - 1) + start.view(b, 1, 1)
    cols = cols.clamp(0, n - 1)  # (B, out, T); taps past the support have coefficient 0
    xi = x.to(torch.int32)
    acc = torch.full(shape, 1 << (_PREC - 1), dtype=torch.int32, device=x.device)
    for tap in range(k.shape[-1]):
        col = cols[..., tap].reshape(view).expand(shape)
        acc.addcmul_(torch.gather(xi, -1, col), k[..., tap].reshape(view))
    return torch.where(acc >= (256 << _PREC), 255, torch.clamp(acc >> _PREC, min=0)).to(torch.uint8)


def resized_crop(x: torch.Tensor, box: torch.Tensor, size: int, kind: str = "bicubic") -> torch.Tensor:
    """Pillow's ``img.crop(box).resize((size, size), kind)`` per image of uint8 x (B, C, H, W).

    Args:
        box: (B, 4) int64 (top, left, height, width), on the CPU.
    """
    taps_w, taps_h = support_taps(box[:, 3], size, kind), support_taps(box[:, 2], size, kind)
    top, left, h, w = upload(box, x.device).unbind(1)
    x = _resample_last_axis(x, left, w, size, kind, taps_w)  # horizontal pass first, as Pillow does
    x = _resample_last_axis(x.transpose(-1, -2), top, h, size, kind, taps_h)
    return x.transpose(-1, -2).contiguous()


# ---- Pillow's RandAugment operations on uint8 batches (B, C, H, W) -----------------------------
def _per(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image value (B,) shaped to broadcast against x (B, C, H, W)."""
    return v.view(-1, *([1] * (x.dim() - 1)))


def blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, x, factor)``: float32 ``d + f * (x - d)``, truncated and clipped."""
    d = degenerate.to(torch.float32)
    out = d + _per(factor.to(torch.float32), x) * (x.to(torch.float32) - d)
    return torch.clamp(out.trunc(), 0, 255).to(torch.uint8)


def gray(x: torch.Tensor) -> torch.Tensor:
    """Pillow's RGB -> L, (B, 3, H, W) -> (B, 1, H, W) uint8; a 1-channel x is returned as is."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Apply per-(image, channel) lookup tables lut (B, C, 256), values 0..255, to x (B, C, H, W)."""
    b, c, h, w = x.shape
    return lut.to(torch.uint8).gather(2, x.reshape(b, c, h * w).long()).view(b, c, h, w)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """The 256 input levels as (1, 1, 256) int64, for lookup tables of x's images."""
    return torch.arange(256, device=x.device).view(1, 1, 256)


def _histogram(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    hist = torch.zeros((b, c, 256), dtype=torch.int64, device=x.device)
    return hist.scatter_add_(
        2, x.reshape(b, c, h * w).long(), torch.ones_like(x, dtype=torch.int64).view(b, c, -1)
    )


def auto_contrast_lut(x: torch.Tensor) -> torch.Tensor:
    """``ImageOps.autocontrast`` (cutoff 0) as tables (B, C, 256): each channel stretched to 0..255."""
    lo = x.amin(dim=(2, 3)).to(torch.float64)[..., None]
    hi = x.amax(dim=(2, 3)).to(torch.float64)[..., None]
    scale = 255.0 / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    offset = -lo * scale
    levels = _levels(x)
    lut = torch.clamp((levels.to(torch.float64) * scale + offset).trunc(), 0, 255).to(torch.int64)
    return torch.where(hi > lo, lut, levels)


def equalize_lut(x: torch.Tensor) -> torch.Tensor:
    """``ImageOps.equalize`` as tables (B, C, 256)."""
    hist = _histogram(x)
    nonzero = hist > 0
    levels = _levels(x).expand_as(hist)
    last_bin = torch.where(nonzero, levels, -1).amax(2, keepdim=True)
    last = hist.gather(2, last_bin.clamp(min=0))
    step = (hist.sum(2, keepdim=True) - last) // 255
    lut = torch.clamp((step // 2 + torch.cumsum(hist, 2) - hist) // step.clamp(min=1), max=255)
    keep = (nonzero.sum(2, keepdim=True) <= 1) | (step == 0)
    return torch.where(keep, levels, lut)


def invert_lut(x: torch.Tensor) -> torch.Tensor:
    """``ImageOps.invert`` as tables (B, 1, 256)."""
    return (255 - _levels(x)).expand(x.shape[0], 1, 256)


def posterize_lut(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """``ImageOps.posterize`` as tables (B, 1, 256): keep the top ``bits`` (B,) bits (8 or more: all)."""
    drop = 8 - bits.clamp(max=8).to(torch.int64).view(-1, 1, 1)
    return _levels(x) & ((~((1 << drop) - 1)) & 255)


def solarize_lut(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``ImageOps.solarize`` as tables (B, 1, 256): levels at or above ``threshold`` (B,) inverted."""
    levels = _levels(x)
    return torch.where(levels < threshold.to(torch.int64).view(-1, 1, 1), levels, 255 - levels)


def solarize_add_lut(x: torch.Tensor, add: torch.Tensor, threshold: int = 128) -> torch.Tensor:
    """timm's ``solarize_add`` as tables (B, 1, 256): levels below ``threshold`` get ``add`` (B,)."""
    levels = _levels(x)
    return torch.where(
        levels < threshold, torch.clamp(levels + add.to(torch.int64).view(-1, 1, 1), max=255), levels
    )


def auto_contrast(x: torch.Tensor) -> torch.Tensor:
    return apply_lut(x, auto_contrast_lut(x))


def equalize(x: torch.Tensor) -> torch.Tensor:
    return apply_lut(x, equalize_lut(x))


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    return apply_lut(x, posterize_lut(x, bits).expand(-1, x.shape[1], -1))


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return apply_lut(x, solarize_lut(x, threshold).expand(-1, x.shape[1], -1))


def solarize_add(x: torch.Tensor, add: torch.Tensor, threshold: int = 128) -> torch.Tensor:
    return apply_lut(x, solarize_add_lut(x, add, threshold).expand(-1, x.shape[1], -1))


def contrast_level(x: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Contrast``'s gray level per image (B,): int(mean of the L image + 0.5)."""
    return torch.floor(gray(x).to(torch.float64).mean(dim=(1, 2, 3)) + 0.5)


def color(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Color``: blend with the gray image (an identity on gray images)."""
    if x.shape[1] == 1:
        return x
    return blend(gray(x).expand_as(x), x, factor)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Contrast``: blend with the rounded mean of the gray image."""
    return blend(_per(contrast_level(x), x).expand_as(x), x, factor)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Brightness``: blend with black."""
    return blend(torch.zeros_like(x), x, factor)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """``ImageFilter.SMOOTH`` (3x3, centre 5, sum 13) in float32 as Pillow sums it (0.5 for rounding,
    then the rows below, at and above, each left to right), truncated; border pixels are copied."""
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x
    k1, k5 = float(np.float32(1 / 13)), float(np.float32(5 / 13))  # float32 kernel values
    f = x.to(torch.float32)

    def taps(rows: slice, centre: float) -> torch.Tensor:
        return f[..., rows, :-2] * k1 + f[..., rows, 1:-1] * centre + f[..., rows, 2:] * k1

    ss = 0.5 + taps(slice(2, None), k1)
    ss = ss + taps(slice(1, -1), k5)
    ss = ss + taps(slice(None, -2), k1)
    out = x.clone()
    out[..., 1:-1, 1:-1] = torch.clamp(ss, 0, 255).trunc().to(torch.uint8)
    return out


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered image."""
    return blend(smooth(x), x, factor)


def affine(x: torch.Tensor, matrix: torch.Tensor, fill: tuple[int, ...]) -> torch.Tensor:
    """``Image.transform(size, AFFINE, matrix, BICUBIC, fillcolor=fill)`` per image.

    Args:
        x: uint8 (B, C, H, W).
        matrix: (B, 6) float64 on x's device (a, b, c, d, e, f): output pixel (x, y) samples the input at
            (a x' + b y' + c, d x' + e y' + f), x' = x + 0.5, y' = y + 0.5 (Pillow's convention).
        fill: the colour of pixels that map outside the input, one value per channel of x.
    """
    b, ch, h, w = x.shape
    dev = x.device
    if b == 0:
        return x
    xo = torch.arange(w, dtype=torch.float64, device=dev)[None, None, :] + 0.5
    yo = torch.arange(h, dtype=torch.float64, device=dev)[None, :, None] + 0.5
    m = matrix.view(b, 6, 1, 1).unbind(1)
    u = m[0] * xo + m[1] * yo + m[2]
    v = m[3] * xo + m[4] * yo + m[5]
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v = u - 0.5, v - 0.5
    x0, y0 = torch.floor(u), torch.floor(v)
    dx, dy = (u - x0)[:, None], (v - y0)[:, None]
    x0, y0 = x0.to(torch.int64) - 1, y0.to(torch.int64) - 1
    k = torch.arange(4, device=dev).view(1, 4, 1, 1)
    ys = ((y0[:, None] + k).clamp(0, h - 1) * w)[:, :, None]  # (B, 4 rows, 1, H, W)
    xs = (x0[:, None] + k).clamp(0, w - 1)[:, None]  # (B, 1, 4 columns, H, W)
    index = (ys + xs).view(b, 1, -1).expand(b, ch, -1)
    taps = x.to(torch.float64).reshape(b, ch, h * w).gather(2, index).view(b, ch, 4, 4, h, w)
    rows = _cubic(*taps.unbind(3), dx[:, :, None])  # (B, C, 4, H, W): each row at offset dx
    val = _cubic(*rows.unbind(2), dy)
    val = torch.where(val <= 0, 0.0, torch.where(val >= 255, 255.0, val.trunc())).to(torch.uint8)
    if len(set(fill)) == 1:
        return torch.where(inside[:, None], val, fill[0])
    fill_t = upload(torch.tensor(fill, dtype=torch.uint8), dev).view(1, ch, 1, 1)
    return torch.where(inside[:, None], val, fill_t)


def _cubic(v1, v2, v3, v4, d):
    """Pillow's BICUBIC macro (Geometry.c): the cubic through four samples at offset d in [0, 1)."""
    p1 = v2
    p2 = -v1 + v3
    p3 = 2 * (v1 - v2) + v3 - v4
    p4 = -v1 + v2 - v3 + v4
    return p1 + d * (p2 + d * (p3 + d * p4))


def rotation_matrix(degrees: float, w: int, h: int) -> list[float]:
    """Pillow's ``Image.rotate(degrees)`` as the affine matrix ``affine`` takes (about the centre)."""
    angle = -math.radians(degrees % 360.0)
    m = [
        round(math.cos(angle), 15),
        round(math.sin(angle), 15),
        0.0,
        round(-math.sin(angle), 15),
        round(math.cos(angle), 15),
        0.0,
    ]
    cx, cy = w / 2, h / 2
    m[2], m[5] = m[0] * -cx + m[1] * -cy + m[2], m[3] * -cx + m[4] * -cy + m[5]
    m[2] += cx
    m[5] += cy
    return m
