"""timm's training transform on whole batches on the model's device, with per-sample randomness.

``BatchAugment.from_timm(augment.train_transform(cfg))`` reads the recipe off timm's own transform
(the object the loader pipeline runs), so both pipelines follow one definition, and runs it on
uint8 batches (B, C, H, W) -> float32 (B, 3, S, S):

1. RandomResizedCrop: timm's parameter rule (10 tries of area x ratio, then a centre crop) per
   sample; the resize is Pillow's own two-pass convolution (its filter, support, coefficient
   rounding to 22-bit fixed point, horizontal pass rounded to uint8 before the vertical one),
   written as gathers, so for the same crop box it gives Pillow's bytes.
2. Horizontal and vertical flips, per sample.
3. RandAugment (``rand-m9-mstd0.5-inc1`` in the paper): per sample and layer an op drawn uniformly
   with replacement, applied with its probability, magnitude ~ N(m, mstd) clipped to [0, mmax],
   sign flipped with probability 1/2 where timm does; the ops are Pillow's definitions on uint8
   (``pil``: lookup tables, ``Image.blend`` in float32 with truncation, the 3x3 SMOOTH
   filter, and affine warps with Pillow's bicubic sampler and fill colour).
4. ToTensor and Normalize (float32, the same arithmetic), then RandomErasing (timm's box rule,
   ``pixel`` / ``rand`` / ``const`` fill).

Mixup/CutMix stay where they are (``engine.train_step``, timm's batched ``Mixup``).

Why by hand: torchvision.transforms.v2 draws one set of parameters per call, so a batch would get
one crop and one RandAugment choice for all its images; kornia draws crops and flips per sample
but from the global generator, and its RandAugment picks its ops once per batch (without
replacement, at a fixed magnitude with another mapping), has no pixel-mode erasing, and resamples
with its own kernels rather than Pillow's (so not the loader's bytes).
What is written here is the per-sample parameter sampling (from explicit generators) and the
batched form of each Pillow operation, built from torch primitives (gather, scatter_add, where).

Differences from timm's per-image CPU pipeline (checked by tests/test_batched.py):

* Random numbers: every parameter comes from a CPU ``torch.Generator`` seeded per batch from (run
  seed, step, rank), and the erasing noise and texture grain from a device generator seeded the
  same way; timm draws from Python's ``random`` and torch's global generator per sample. The
  distributions are the same (crop area and aspect, flip rates, op frequencies, magnitudes,
  erasing rate and box), the draws are not, and they differ between CPU and CUDA only in the noise.
* Pixels: for the same parameters the crop-resize, flips and the colour/LUT ops give Pillow's bytes;
  the geometric RandAugment ops follow Pillow's bicubic sampler and may differ by one gray level
  where floating-point rounding falls the other way. Erasing noise is drawn on the device.
* Gray sources (every fractal kind) run steps 1-3 on one channel and are expanded to three before
  normalisation: the same numbers, since every op maps equal channels to equal channels while the
  fill colour is gray (with another fill the batch is expanded first).
* ColorJitter (which timm disables whenever RandAugment is on, as in the paper) and other timm
  components are not available: ``from_timm`` refuses them with a ParamError naming ``pipeline``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...errors import ParamError
from ..runtime import upload
from . import pil as pb

_LEVEL_DENOM = 10.0  # timm's magnitude scale


# ---- parameters ------------------------------------------------------------------------------------
def _uniform(gen, shape, lo, hi) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def _randint(gen, hi_inclusive: torch.Tensor) -> torch.Tensor:
    """Integers uniform in [0, hi] per element (``random.randint(0, hi)``)."""
    u = torch.rand(hi_inclusive.shape, generator=gen, dtype=torch.float64)
    return torch.floor(u * (hi_inclusive + 1).to(torch.float64)).to(torch.int64)


def _first_true(ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(any (B,), index of the first True per row (B,), 0 where none)."""
    return ok.any(1), ok.to(torch.int8).argmax(1)


def crop_boxes(gen, b: int, h: int, w: int, scale, ratio) -> torch.Tensor:
    """timm's RandomResizedCrop boxes: (B, 4) int64 (top, left, height, width), CPU."""
    area = h * w
    target = _uniform(gen, (b, 10), scale[0], scale[1]) * area
    aspect = torch.exp(_uniform(gen, (b, 10), math.log(ratio[0]), math.log(ratio[1])))
    tw = torch.round(torch.sqrt(target * aspect)).to(torch.int64)
    th = torch.round(torch.sqrt(target / aspect)).to(torch.int64)
    found, k = _first_true((tw <= w) & (th <= h))
    tw, th = tw.gather(1, k[:, None])[:, 0], th.gather(1, k[:, None])[:, 0]
    top, left = _randint(gen, (h - th).clamp(min=0)), _randint(gen, (w - tw).clamp(min=0))
    in_ratio = w / h  # the fallback: a centre crop
    if in_ratio < min(ratio):
        fw, fh = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = h, int(round(h * max(ratio)))
    else:
        fw, fh = w, h
    th, tw = torch.where(found, th, fh), torch.where(found, tw, fw)
    top = torch.where(found, top, (h - fh) // 2)
    left = torch.where(found, left, (w - fw) // 2)
    return torch.stack([top, left, th, tw], 1)


def erase_boxes(gen, b: int, h: int, w: int, p: float, area_range, log_aspect) -> torch.Tensor:
    """timm's RandomErasing boxes (one per image): (B, 4) int64 (top, left, height, width); height
    0 where the image is not erased (probability 1 - p, or no try fitted)."""
    apply = torch.rand(b, generator=gen, dtype=torch.float64) <= p
    target = _uniform(gen, (b, 10), area_range[0], area_range[1]) * (h * w)
    aspect = torch.exp(_uniform(gen, (b, 10), log_aspect[0], log_aspect[1]))
    eh = torch.round(torch.sqrt(target * aspect)).to(torch.int64)
    ew = torch.round(torch.sqrt(target / aspect)).to(torch.int64)
    found, k = _first_true((ew < w) & (eh < h))
    eh, ew = eh.gather(1, k[:, None])[:, 0], ew.gather(1, k[:, None])[:, 0]
    top, left = _randint(gen, (h - eh).clamp(min=0)), _randint(gen, (w - ew).clamp(min=0))
    keep = apply & found
    return torch.stack([top, left, torch.where(keep, eh, 0), torch.where(keep, ew, 0)], 1)


# ---- RandAugment ------------------------------------------------------------------------------------
#: timm's level -> argument rules (auto_augment.LEVEL_TO_ARG) for the ops we run, vectorised:
#: level (n,) float64 in [0, mmax], sign (n,) +-1 where timm negates at random, hparams.
_ENHANCE = ("Color", "Contrast", "Brightness", "Sharpness")
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY", "TranslateXRel", "TranslateYRel")


def level_to_arg(name: str, level: np.ndarray, sign: np.ndarray, hparams: dict) -> np.ndarray | None:
    """The op argument timm derives from a magnitude (None for ops without one)."""
    frac = level / _LEVEL_DENOM
    if name in ("AutoContrast", "Equalize", "Invert"):
        return None
    if name == "Rotate":
        return sign * (frac * 30.0)
    if name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        bits = np.floor(frac * 4).astype(np.int64)
        return {"Posterize": bits, "PosterizeIncreasing": 4 - bits, "PosterizeOriginal": bits + 4}[name]
    if name in ("Solarize", "SolarizeIncreasing"):
        t = np.minimum(256, np.floor(frac * 256).astype(np.int64))
        return t if name == "Solarize" else 256 - t
    if name == "SolarizeAdd":
        return np.minimum(128, np.floor(frac * 110).astype(np.int64))
    if name in _ENHANCE:
        return frac * 1.8 + 0.1
    if name in tuple(n + "Increasing" for n in _ENHANCE):
        return np.maximum(0.1, 1.0 + sign * (frac * 0.9))
    if name in ("ShearX", "ShearY"):
        return sign * (frac * 0.3)
    if name in ("TranslateX", "TranslateY"):
        return sign * (frac * float(hparams["translate_const"]))
    if name in ("TranslateXRel", "TranslateYRel"):
        return sign * (frac * hparams.get("translate_pct", 0.45))
    raise ParamError(
        "pipeline", f"the batched pipeline has no RandAugment op {name!r}; use --pipeline loader"
    )


def _base(name: str) -> str:
    return name.replace("Increasing", "").replace("Original", "")


def op_group(name: str) -> str:
    """How an op runs: ``lut`` (a table per image), ``blend`` (with a degenerate image) or ``warp``."""
    base = _base(name)
    if base in _ENHANCE:
        return "blend"
    if name in _GEOMETRIC:
        return "warp"
    return "lut"


def op_lut(name: str, x: torch.Tensor, arg: torch.Tensor | None) -> torch.Tensor:
    """Lookup tables (n, C, 256) of op ``name`` for images x (n, C, H, W), arguments (n,)."""
    base = _base(name)
    if base == "AutoContrast":
        return pb.auto_contrast_lut(x)
    if base == "Equalize":
        return pb.equalize_lut(x)
    tables = {"Invert": lambda: pb.invert_lut(x), "Posterize": lambda: pb.posterize_lut(x, arg)}
    tables |= {
        "Solarize": lambda: pb.solarize_lut(x, arg),
        "SolarizeAdd": lambda: pb.solarize_add_lut(x, arg),
    }
    return tables[base]().expand(-1, x.shape[1], -1)


def op_degenerate(name: str, x: torch.Tensor) -> torch.Tensor:
    """The image op ``name`` blends each of x (n, C, H, W) with (Pillow's ``ImageEnhance``)."""
    base = _base(name)
    if base == "Color":
        return pb.gray(x).expand_as(x)
    if base == "Contrast":
        return pb.contrast_level(x).to(torch.uint8).view(-1, 1, 1, 1).expand_as(x)
    if base == "Brightness":
        return torch.zeros_like(x)
    return pb.smooth(x)


def op_matrices(name: str, arg: np.ndarray, w: int, h: int) -> list[list[float]]:
    """The affine matrices of a geometric op, one per argument, as ``pil.affine`` takes them."""
    v = [float(t) for t in arg]
    rel = name.endswith("Rel")
    if name == "Rotate":
        return [pb.rotation_matrix(d, w, h) for d in v]
    if name == "ShearX":
        return [[1, f, 0, 0, 1, 0] for f in v]
    if name == "ShearY":
        return [[1, 0, 0, f, 1, 0] for f in v]
    if name.startswith("TranslateX"):
        return [[1, 0, t * w if rel else t, 0, 1, 0] for t in v]
    return [[1, 0, 0, 0, 1, t * h if rel else t] for t in v]


class RandAugmentParams:
    """Per-image RandAugment draws for one batch: op index, applied, magnitude, sign per layer."""

    def __init__(self, op: torch.Tensor, applied: torch.Tensor, level: torch.Tensor, sign: torch.Tensor):
        self.op, self.applied, self.level, self.sign = op, applied, level, sign  # each (B, layers)


class BatchRandAugment:
    """timm's ``RandAugment`` read off its object: ops (names, probabilities, magnitudes), layers."""

    def __init__(self, ra):
        if ra.choice_weights is not None:
            raise ParamError(
                "pipeline", "the batched pipeline has no weighted RandAugment choice; use --pipeline loader"
            )
        self.names = [op.name for op in ra.ops]
        self.layers = int(ra.num_layers)
        first = ra.ops[0]
        for op in ra.ops:
            level_to_arg(op.name, np.zeros(1), np.ones(1), op.hparams)  # refuses unknown ops
            resample = op.kwargs.get("resample")
            if op.name in _GEOMETRIC and (isinstance(resample, (tuple, list)) or int(resample) != 3):
                raise ParamError(
                    "pipeline",
                    "the batched pipeline's RandAugment warps are bicubic only; use --pipeline loader",
                )
        self.prob = np.array([op.prob for op in ra.ops], dtype=np.float64)
        self.magnitude = np.array([op.magnitude for op in ra.ops], dtype=np.float64)
        self.std = float(first.magnitude_std)
        self.upper = float(first.magnitude_max or _LEVEL_DENOM)
        self.hparams = first.hparams
        self.fill = tuple(int(v) for v in first.kwargs["fillcolor"])

    def params(self, gen, b: int) -> RandAugmentParams:
        shape = (b, self.layers)
        op = torch.floor(torch.rand(shape, generator=gen, dtype=torch.float64) * len(self.names)).to(
            torch.int64
        )
        applied = torch.rand(shape, generator=gen, dtype=torch.float64) <= torch.from_numpy(self.prob)[op]
        mag = torch.from_numpy(self.magnitude)[op]
        if math.isinf(self.std):
            level = torch.rand(shape, generator=gen, dtype=torch.float64) * mag
        else:
            level = mag + self.std * torch.randn(shape, generator=gen, dtype=torch.float64)
        level = torch.clamp(level, 0.0, self.upper)
        sign = torch.where(torch.rand(shape, generator=gen, dtype=torch.float64) > 0.5, -1.0, 1.0)
        return RandAugmentParams(op, applied, level, sign)

    def apply(self, x: torch.Tensor, p: RandAugmentParams) -> torch.Tensor:
        """Apply the layers in order. In a layer every image runs at most one op, so the images are
        grouped by how their op runs: one table lookup for every table op, one blend for every
        enhancement, one warp for every geometric op."""
        dev, (h, w) = x.device, x.shape[-2:]
        fill = self.fill if x.shape[1] == 3 else self.fill[:1]
        for layer in range(self.layers):
            op, applied = p.op[:, layer].numpy(), p.applied[:, layer].numpy()
            groups = {"lut": ([], []), "blend": ([], []), "warp": ([], [])}
            for k, name in enumerate(self.names):
                sel = np.flatnonzero((op == k) & applied)
                if not len(sel):
                    continue
                arg = level_to_arg(
                    name, p.level[sel, layer].numpy(), p.sign[sel, layer].numpy(), self.hparams
                )
                kind = op_group(name)
                if kind == "warp":
                    made = torch.tensor(op_matrices(name, arg, w, h), dtype=torch.float64)
                else:
                    idx = upload(torch.from_numpy(sel), dev)
                    a = None if arg is None else upload(torch.from_numpy(np.asarray(arg)), dev)
                    if kind == "blend":
                        made = (op_degenerate(name, x[idx]), a)
                    else:  # only the histogram ops read the pixels to make their tables
                        pixels = _base(name) in ("AutoContrast", "Equalize")
                        sub = x[idx] if pixels else x.new_empty((len(sel), x.shape[1], 0, 0))
                        made = op_lut(name, sub, a)
                groups[kind][0].append(sel)
                groups[kind][1].append(made)
            for kind, (sels, made) in groups.items():
                if not sels:
                    continue
                idx = upload(torch.from_numpy(np.concatenate(sels)), dev)
                if kind == "lut":
                    x[idx] = pb.apply_lut(x[idx], torch.cat(made))
                elif kind == "blend":
                    degenerate = torch.cat([m[0] for m in made])
                    x[idx] = pb.blend(degenerate, x[idx], torch.cat([m[1] for m in made]))
                else:
                    x[idx] = pb.affine(x[idx], upload(torch.cat(made), dev), fill)
        return x


# ---- the whole transform -----------------------------------------------------------------------------
class AugmentParams:
    """Every random choice of one batch (CPU tensors): crop boxes (B, 4), flips (B,), RandAugment,
    erasing boxes (B, 4) (height 0: not erased)."""

    def __init__(self, crop, hflip, vflip, ra, erase):
        self.crop, self.hflip, self.vflip, self.ra, self.erase = crop, hflip, vflip, ra, erase


class BatchAugment:
    """timm's training transform on uint8 batches on the device; see the module docstring.

    Build with ``from_timm(transform)``; call ``aug(x, gen, noise_gen)`` with x uint8 (B, C, H, W)
    on the device, ``gen`` a CPU generator (every parameter) and ``noise_gen`` a generator on the
    device (erasing noise); returns float32 (B, 3, S, S).
    """

    def __init__(self, *, size, scale, ratio, interpolation, hflip, vflip, ra, mean, std, erase):
        self.size, self.scale, self.ratio, self.interpolation = size, scale, ratio, interpolation
        self.hflip, self.vflip, self.ra = hflip, vflip, ra
        self.mean, self.std, self.erase = tuple(mean), tuple(std), erase

    @classmethod
    def from_timm(cls, transform) -> BatchAugment:
        """Read the recipe off the transform ``augment.train_transform`` builds (a Compose).

        Raises:
            ParamError: a transform this class does not know, naming it and timm's version (a timm
                other than the pinned one may build the recipe from other classes).
        """
        import timm
        from timm.data.auto_augment import RandAugment
        from timm.data.random_erasing import RandomErasing
        from timm.data.transforms import MaybeToTensor, RandomResizedCropAndInterpolation
        from torchvision import transforms as T

        def refuse(what: str):
            raise ParamError(
                "pipeline",
                f"the batched pipeline cannot run {what} (timm {timm.__version__}); use --pipeline loader",
            )

        kw = {"hflip": 0.0, "vflip": 0.0, "ra": None, "erase": None, "mean": (0.0,) * 3, "std": (1.0,) * 3}
        for t in transform.transforms:
            if isinstance(t, RandomResizedCropAndInterpolation):
                if isinstance(t.interpolation, (tuple, list)) or t.size[0] != t.size[1]:
                    refuse(repr(t))
                interp = t.interpolation.value
                if interp not in pb.FILTERS:
                    refuse(repr(t))
                kw.update(
                    size=int(t.size[0]), scale=tuple(t.scale), ratio=tuple(t.ratio), interpolation=interp
                )
            elif isinstance(t, T.RandomHorizontalFlip):
                kw["hflip"] = float(t.p)
            elif isinstance(t, T.RandomVerticalFlip):
                kw["vflip"] = float(t.p)
            elif isinstance(t, RandAugment):
                kw["ra"] = BatchRandAugment(t)
            elif isinstance(t, T.ColorJitter):
                if any(v is not None for v in (t.brightness, t.contrast, t.saturation, t.hue)):
                    refuse("ColorJitter")
            elif isinstance(t, (MaybeToTensor, T.ToTensor)):
                pass
            elif isinstance(t, T.Normalize):
                kw.update(mean=tuple(float(v) for v in t.mean), std=tuple(float(v) for v in t.std))
            elif isinstance(t, RandomErasing):
                if t.min_count != 1 or t.max_count != 1 or t.num_splits > 1:
                    refuse(repr(t))
                kw["erase"] = (
                    float(t.probability),
                    (t.min_area, t.max_area),
                    tuple(t.log_aspect_ratio),
                    t.mode,
                )
            else:
                refuse(type(t).__name__)
        if "size" not in kw:
            refuse("a transform without RandomResizedCrop")
        return cls(**kw)

    def params(self, gen: torch.Generator, b: int, h: int, w: int) -> AugmentParams:
        """Draw every parameter of a batch of b images of h x w pixels from the CPU generator."""
        crop = crop_boxes(gen, b, h, w, self.scale, self.ratio)
        hflip = torch.rand(b, generator=gen, dtype=torch.float64) < self.hflip
        vflip = torch.rand(b, generator=gen, dtype=torch.float64) < self.vflip
        ra = self.ra.params(gen, b) if self.ra is not None else None
        erase = None
        if self.erase is not None:
            p, area, log_aspect, _ = self.erase
            erase = erase_boxes(gen, b, self.size, self.size, p, area, log_aspect)
        return AugmentParams(crop, hflip, vflip, ra, erase)

    def apply(self, x: torch.Tensor, p: AugmentParams, noise_gen: torch.Generator | None) -> torch.Tensor:
        """Run the transform with the drawn parameters: uint8 (B, C, H, W) -> float32 (B, 3, S, S)."""
        dev = x.device
        x = pb.resized_crop(x, p.crop, self.size, self.interpolation)
        x = torch.where(upload(p.hflip, dev).view(-1, 1, 1, 1), x.flip(-1), x)
        x = torch.where(upload(p.vflip, dev).view(-1, 1, 1, 1), x.flip(-2), x)
        if self.ra is not None:
            if x.shape[1] == 1 and len(set(self.ra.fill)) > 1:
                x = x.expand(-1, 3, -1, -1)  # a coloured fill makes gray images coloured
            x = self.ra.apply(x.contiguous(), p.ra)
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        mean = upload(torch.tensor(self.mean, dtype=torch.float32), dev).view(1, 3, 1, 1)
        std = upload(torch.tensor(self.std, dtype=torch.float32), dev).view(1, 3, 1, 1)
        x = (x.to(torch.float32).div(255) - mean) / std
        if p.erase is not None:
            x = self._erase(x, p.erase, noise_gen)
        return x

    def _erase(self, x: torch.Tensor, boxes: torch.Tensor, noise_gen) -> torch.Tensor:
        sel = np.flatnonzero(boxes[:, 2].numpy() > 0)
        if not len(sel):
            return x
        dev, s = x.device, x.shape[-1]
        idx = upload(torch.from_numpy(sel), dev)
        top, left, h, w = upload(boxes[sel], dev).view(-1, 4, 1, 1, 1).unbind(1)
        ys = torch.arange(s, device=dev).view(1, 1, -1, 1)
        xs = torch.arange(s, device=dev).view(1, 1, 1, -1)
        inside = (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)
        mode = self.erase[3]
        n = len(sel)
        if mode == "pixel":
            fill = torch.randn((n, 3, s, s), generator=noise_gen, device=dev)
        elif mode == "rand":
            fill = torch.randn((n, 3, 1, 1), generator=noise_gen, device=dev).expand(n, 3, s, s)
        else:
            fill = torch.zeros((n, 3, s, s), device=dev)
        x[idx] = torch.where(inside, fill, x[idx])
        return x

    def __call__(
        self, x: torch.Tensor, gen: torch.Generator, noise_gen: torch.Generator | None
    ) -> torch.Tensor:
        return self.apply(x, self.params(gen, x.shape[0], x.shape[-2], x.shape[-1]), noise_gen)
