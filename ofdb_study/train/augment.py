"""Augmentation recipes: timm transforms and Mixup from a config, plus the paper's Table-1 options.

Two layers:

* Image-level recipes (``train_transform``, ``eval_transform``, ``build_mixup``) are thin calls of
  ``timm.data.create_transform`` and ``timm.data.Mixup`` with the config's values; Mixup is built
  only when Mixup or CutMix is on.
* Instance-level options (``INSTANCE_AUGMENTS``) decide which fractal image a category yields each
  time it is sampled, before the image-level recipe. They are the rows of the paper's Table 1:

  - ``default``: the category's one OFDB image (``fractals.datasets.ofdb_image``).
  - ``fluctuation``: one of FractalDB's 25 weight rows (``ifs.fluctuation_weights()``) drawn per
    sample and applied to the coefficients (with ``a`` x 1, since the OFDB ``a`` x 0.2 is itself
    row 1 of that table), points re-computed, drawn with the category's OFDB masks.
  - ``rotation``: one of FractalDB's four flips (``render.FLIPS``: none, top-bottom, left-right,
    both) per sample.
  - ``pattern``: random pattern: the category's cached points drawn with fresh 3x3 masks.
  - ``texture``: random texture (our definition; the paper's code has none): the shape of the
    fixed image is kept and its lit pixels are re-shaded by a fresh random gray-level field, the
    product of a smooth field (a g x g grid of uniforms in [0.2, 1], g uniform in 2..8, bilinearly
    upsampled to the image) and per-pixel grain (uniform in [0.6, 1]); background stays black.
  - ``both``: pattern, then texture.

All randomness comes from the ``rng`` argument (a ``numpy.random.Generator``) so samples are
reproducible from a seed.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParamError
from ..fractals.defaults import FRACTALDB_ROWS
from ..fractals.render import FLIPS, flip

INSTANCE_AUGMENTS = ("default", "fluctuation", "rotation", "pattern", "texture", "both")


def check_augment(name: str) -> str:
    if name not in INSTANCE_AUGMENTS:
        raise ParamError(
            "augment", f"unknown augmentation {name!r}; choose from {', '.join(INSTANCE_AUGMENTS)}"
        )
    return name


# ---- image-level recipes (timm) -----------------------------------------------------------------
def _posterize_to_zero_bits() -> None:
    """timm's posterize ops with 0 bits kept on any Pillow: Pillow 13 refuses
    ``ImageOps.posterize(img, 0)``, which RandAugment's ``inc1`` asks for at magnitude 10, where
    Pillow 12 gave a black image; that image is what timm's ops now return for 0 bits."""
    from timm.data import auto_augment as aa

    original = aa.posterize
    if getattr(original, "zero_bits", False):
        return

    def posterize(img, bits_to_keep, **kw):
        if bits_to_keep <= 0:
            return img.point([0] * (256 * len(img.getbands())))
        return original(img, bits_to_keep, **kw)

    posterize.zero_bits = True
    aa.posterize = posterize
    for name, op in list(aa.NAME_TO_OP.items()):
        if op is original:
            aa.NAME_TO_OP[name] = posterize


def train_transform(cfg):
    """timm's training transform for ``cfg`` (a TrainConfig): PIL image -> float tensor (3, S, S)."""
    from timm.data import create_transform

    _posterize_to_zero_bits()
    return create_transform(
        input_size=cfg.img_size,
        is_training=True,
        scale=tuple(cfg.scale),
        ratio=tuple(cfg.ratio),
        hflip=cfg.hflip,
        vflip=cfg.vflip,
        color_jitter=cfg.color_jitter,
        auto_augment=cfg.auto_augment,
        interpolation=cfg.interpolation,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        re_prob=cfg.re_prob,
        re_mode=cfg.re_mode,
        re_count=1,
    )


def eval_settings(cfg) -> dict:
    """The arguments of ``timm.data.create_transform`` that ``eval_transform`` uses: resize the
    short side to ``img_size / crop_pct``, centre-crop ``img_size``, tensor, normalise. Also the
    evaluation cache's key, so the two agree.

    ``crop_pct`` 0.875 at 224 is the public evaluation (resize 256, crop 224); 1.0 resizes the
    whole image to ``img_size`` (the small profiles' 32 px images).
    """
    return {
        "input_size": cfg.img_size,
        "is_training": False,
        "interpolation": cfg.interpolation,
        "mean": tuple(cfg.mean),
        "std": tuple(cfg.std),
        "crop_pct": cfg.crop_pct,
    }


def eval_transform(cfg):
    """timm's evaluation transform from ``eval_settings``: PIL -> float tensor (3, S, S)."""
    from timm.data import create_transform

    return create_transform(**eval_settings(cfg))


def mixup_active(cfg) -> bool:
    return cfg.mixup > 0 or cfg.cutmix > 0


def build_mixup(cfg, num_classes: int):
    """timm ``Mixup`` (batch (B, 3, S, S), labels (B,) -> mixed batch, soft targets (B, C)), or None."""
    if not mixup_active(cfg):
        return None
    from timm.data import Mixup

    return Mixup(
        mixup_alpha=cfg.mixup,
        cutmix_alpha=cfg.cutmix,
        prob=cfg.mixup_prob,
        switch_prob=cfg.mixup_switch_prob,
        mode="batch",
        label_smoothing=cfg.smoothing,
        num_classes=num_classes,
    )


# ---- instance-level options (Table 1) ---------------------------------------------------------
#: Random texture: grid side g drawn from TEXTURE_GRID[0] .. TEXTURE_GRID[1] (inclusive), grid values
#: uniform in TEXTURE_FIELD, per-pixel grain uniform in TEXTURE_GRAIN.
TEXTURE_GRID = (2, 8)
TEXTURE_FIELD = (0.2, 1.0)
TEXTURE_GRAIN = (0.6, 1.0)


def texture_field(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """A g x g grid bilinearly upsampled to (h, w), grid corners on the image corners; float64."""
    g = grid.shape[0]
    ys = np.linspace(0, g - 1, h)
    xs = np.linspace(0, g - 1, w)
    y0 = np.minimum(ys.astype(int), g - 2)
    x0 = np.minimum(xs.astype(int), g - 2)
    ty = (ys - y0)[:, None]
    tx = (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x0 + 1] * tx
    bottom = grid[y0 + 1][:, x0] * (1 - tx) + grid[y0 + 1][:, x0 + 1] * tx
    return top * (1 - ty) + bottom * ty


def random_texture(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-shade the lit pixels of a gray image with a fresh random field (see module docstring).

    Args:
        image: uint8 (H, W); 0 is background.
        rng: the random source: draws g, then the g x g grid, then the (H, W) grain.

    Returns:
        uint8 (H, W), zero where ``image`` is zero.
    """
    h, w = image.shape
    g = int(rng.integers(TEXTURE_GRID[0], TEXTURE_GRID[1] + 1))
    grid = rng.uniform(*TEXTURE_FIELD, size=(g, g))
    field = texture_field(grid, h, w)
    grain = rng.uniform(*TEXTURE_GRAIN, size=(h, w))
    shade = np.clip(255.0 * field * grain, 1, 255).astype(np.uint8)
    return np.where(image > 0, shade, 0).astype(np.uint8)


def instance_image(source, category: int, option: str, rng: np.random.Generator) -> np.ndarray:
    """The image category ``category`` yields under Table-1 option ``option``.

    Args:
        source: a ``fractals.datasets.FractalSource`` (cached points and images per category).
        category: category index.
        option: one of ``INSTANCE_AUGMENTS``.
        rng: the random source of this sample.

    Returns:
        uint8 gray image (S, S), S = the source's render size.
    """
    if option == "default":
        return source.fixed_image(category)
    if option == "fluctuation":
        return source.row_image(category, int(rng.integers(0, FRACTALDB_ROWS)))
    if option == "rotation":
        which = FLIPS[int(rng.integers(0, len(FLIPS)))]
        return np.ascontiguousarray(flip(source.fixed_image(category), which))
    if option == "pattern":
        return source.pattern_image(category, int(rng.integers(0, 2**62)))
    if option == "texture":
        return random_texture(source.fixed_image(category), rng)
    if option == "both":
        return random_texture(source.pattern_image(category, int(rng.integers(0, 2**62))), rng)
    raise ParamError(
        "augment", f"unknown augmentation {option!r}; choose from {', '.join(INSTANCE_AUGMENTS)}"
    )
