"""The batched pipeline against the loader's: the same images before augmentation (byte for byte),
Pillow's bytes for every operation, timm's parameter distributions within sampling error, seeded
batches, a smoke pre-training with kill and resume, and the choice between the pipelines."""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from PIL import Image, ImageEnhance, ImageFilter, ImageOps  # noqa: E402
from timm.data import auto_augment as taa  # noqa: E402

from ofdb_study import cli  # noqa: E402
from ofdb_study.config import phase_config  # noqa: E402
from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.fractals import kernels, ofdb3d, onepfrac, render  # noqa: E402
from ofdb_study.train import augment, batched, engine  # noqa: E402
from ofdb_study.train import pretrain_data as pdata  # noqa: E402
from ofdb_study.train.runtime import StreamBatches  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
N = 4000  # draws per side in the distribution tests


@pytest.fixture(scope="module", autouse=True)
def _search_cached(searched):
    """The engine reads the session's exact search from its cache."""


@pytest.fixture(scope="module")
def source(searched):
    return pdata.FractalSource(searched.categories[:4], size=40, n_points=3000, pad=0)


@pytest.fixture(scope="module")
def paper_aug():
    return batched.transforms.BatchAugment.from_timm(
        augment.train_transform(phase_config("paper", "pretrain"))
    )


@pytest.fixture(scope="module")
def small_aug():
    """The paper's recipe at 48 px (for speed)."""
    cfg = phase_config("paper", "pretrain", img_size=48)
    return batched.transforms.BatchAugment.from_timm(augment.train_transform(cfg))


# ---- sources: the same images before augmentation ---------------------------------------------------
def test_mask_rule_is_the_kernels(source):
    seeds = np.array([0, 1, 7, 2**62 - 1, 123456789012345], dtype=np.int64)
    idx = torch.arange(0, 5000, 37)
    keys = torch.from_numpy(batched.draw.mask_keys(seeds))
    h = batched.draw.splitmix64_t(keys[:, None] + idx[None])
    mask = 1 + ((batched.draw._srl(h, 32) * 511) >> 32)
    want = [[kernels.patch_mask(int(s), int(i)) for i in idx] for s in seeds]
    assert mask.tolist() == want


@pytest.mark.parametrize("size,pad", [(32, 1), (40, 0), (48, 3)])
def test_stamped_patches_are_render_draw(searched, size, pad):
    src = pdata.FractalSource(searched.categories[:3], size=size, n_points=2500, pad=pad)
    tables = batched.draw.PatchTables(size, CPU, batched.sources._Budget(CPU, "test"))
    for c in range(3):
        tables.add(src.points(c))
    tables.finish()
    rows, seeds = [0, 1, 2, 0, 2], [0, 5, 2**62 - 1, 99, 3]
    want = np.stack([render.draw(src.points(r), mode="patch", mask_seed=s) for r, s in zip(rows, seeds)])
    np.testing.assert_array_equal(tables.stamp(np.array(rows), seeds).numpy(), want)


class _Drawn:
    """A stand-in for the loader's per-sample ``numpy.random.Generator`` that returns given draws,
    so the loader's own ``augment.instance_image`` makes the picture of the batched pipeline's choice."""

    def __init__(self, value: int):
        self.value = int(value)

    def integers(self, low, high=None):
        assert 0 <= self.value < (high if high is not None else low)
        return self.value


def _loader_pictures(source, option: str, keys) -> list[np.ndarray]:
    """The loader's images of sample keys under ``option``, given the batched pipeline's draws."""
    seeds = np.array([k[1] for k in keys], dtype=np.uint64)
    draw = {
        "fluctuation": batched.draw.bounded(batched.draw.sample_draws(seeds, 0), 25),
        "rotation": batched.draw.bounded(batched.draw.sample_draws(seeds, 1), 4),
        "pattern": batched.draw.pattern_seeds(seeds),
    }.get(option, np.zeros(len(keys), dtype=np.int64))
    return [augment.instance_image(source, c, option, _Drawn(d)) for (c, _), d in zip(keys, draw)]


@pytest.mark.parametrize("option", ["default", "rotation", "fluctuation", "pattern"])
def test_ofdb_sources_give_the_loaders_pictures(source, option):
    ds = pdata.OFDBDataset(source, option)
    fb = batched.sources.batched_source(ds, CPU)
    keys = [(c, s) for c in range(4) for s in (11, 12, 13)]
    img, labels = fb.batch(keys, None)
    assert img.shape == (12, 1, 40, 40) and img.dtype == torch.uint8
    assert labels.tolist() == [k[0] for k in keys]
    np.testing.assert_array_equal(img[:, 0].numpy(), np.stack(_loader_pictures(source, option, keys)))
    if option == "pattern":
        assert not np.array_equal(img[0, 0].numpy(), img[1, 0].numpy())  # fresh masks per sample


@pytest.fixture(scope="module")
def onepfrac_source():
    settings = onepfrac.Settings(categories=3, delta=0.1, seed=0, size=48, points=4000, pad=2)
    return pdata.OnePFracSource(onepfrac.generate(settings, workers=1))


@pytest.mark.parametrize("option", ["default", "rotation", "fluctuation", "pattern"])
def test_onepfrac_sources_give_the_loaders_pictures(onepfrac_source, option):
    """1p-frac's batched images are its in-memory source's: the generator's kept images (default,
    rotation), the class systems' weight rows and fresh patterns."""
    fb = batched.sources.batched_source(pdata.OFDBDataset(onepfrac_source, option), CPU)
    keys = [(c, s) for c in range(3) for s in (5, 6)]
    img, labels = fb.batch(keys, None)
    assert labels.tolist() == [k[0] for k in keys]
    np.testing.assert_array_equal(
        img[:, 0].numpy(), np.stack(_loader_pictures(onepfrac_source, option, keys))
    )
    if option == "default":
        kept = [onepfrac_source.result.classes[c].image for c, _ in keys]
        np.testing.assert_array_equal(img[:, 0].numpy(), np.stack(kept))


def test_fractaldb_source_gives_every_row_render_and_flip(source):
    ds = pdata.FractalDBDataset(source)
    fb = batched.sources.batched_source(ds, CPU)
    idx = [0, 1, 2, 3, 39, 40, 517, 999, 1000, 2461, 3999]
    img, labels = fb.batch([(i, 0) for i in idx], None)
    np.testing.assert_array_equal(img[:, 0].numpy(), np.stack([ds.image(i) for i in idx]))
    assert labels.tolist() == [i // 1000 for i in idx]


def test_source_builds_keep_nothing_on_the_host(source):
    """Building a batched source caches no points or images in the (shared) FractalSource."""
    fresh = pdata.FractalSource(source.categories, size=40, n_points=3000, pad=0)
    for option in ("default", "fluctuation", "pattern"):
        batched.sources.batched_source(pdata.OFDBDataset(fresh, option), CPU)
    batched.sources.batched_source(pdata.FractalDBDataset(fresh), CPU)
    assert not fresh._points and not fresh._fixed and not fresh._rows


def test_texture_field_is_numpys_and_background_stays_black(source):
    rng = np.random.default_rng(0)
    g = np.arange(2, 9)
    grid = rng.uniform(0.2, 1.0, (len(g), 8, 8))
    got = batched.draw.texture_field_batch(torch.from_numpy(g), torch.from_numpy(grid), 40, 33).numpy()
    for k, gk in enumerate(g):
        np.testing.assert_array_equal(got[k], augment.texture_field(grid[k, :gk, :gk], 40, 33))
    fb = batched.sources.FractalBatches(pdata.OFDBDataset(source, "both"), CPU)
    img = fb.batch([(0, 1), (2, 2)], torch.Generator().manual_seed(0))[0][:, 0]
    plain = batched.sources.FractalBatches(pdata.OFDBDataset(source, "pattern"), CPU)
    plain = plain.batch([(0, 1), (2, 2)], None)[0][:, 0]
    assert torch.equal(img > 0, plain > 0) and len(torch.unique(img[img > 0])) > 5


def _write_tree(root: Path, sizes, mode="L", lit=1.0):
    """Categories of 3 random images each (a share ``lit`` of the pixels non-zero)."""
    rng = np.random.default_rng(1)
    for c, size in enumerate(sizes):
        (root / f"{c:05d}").mkdir(parents=True)
        for v in range(3):
            arr = rng.integers(1, 256, (size, size) if mode == "L" else (size, size, 3), dtype=np.uint8)
            arr[rng.random(arr.shape[:2]) >= lit] = 0
            Image.fromarray(arr, mode).save(root / f"{c:05d}" / f"{v:02d}.png")


def _loader_views(ds, keys, monkeypatch) -> np.ndarray:
    """``MultiViewDataset.view`` of sample keys, its random view (and pattern seed) being the
    batched pipeline's draws."""
    seeds = np.array([k[1] for k in keys], dtype=np.uint64)
    counts = np.array([len(ds.views[i]) for i, _ in keys])
    picks = iter(batched.draw.bounded(batched.draw.sample_draws(seeds, 5), counts).tolist())
    patterns = iter(batched.draw.pattern_seeds(seeds).tolist())
    with monkeypatch.context() as m:
        m.setattr(pdata.random, "randrange", lambda n: next(picks))
        m.setattr(pdata.np.random, "randint", lambda lo, hi: next(patterns))
        return np.stack([ds.view(i) for i, _ in keys])


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_stored_trees_are_the_decoded_files(tmp_path, mode, monkeypatch):
    from torchvision.datasets import ImageFolder

    _write_tree(tmp_path / "t", [12, 12], mode)
    folder = ImageFolder(str(tmp_path / "t"))
    sb = batched.sources.batched_source(folder, CPU)
    assert sb.channels == (1 if mode == "L" else 3)
    img, labels = sb.batch([(4, 0), (0, 1)], None)
    for got, i in zip(img, (4, 0)):
        want = np.asarray(Image.open(folder.samples[i][0]).convert("RGB"))[..., : sb.channels]
        np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), want)
    assert labels.tolist() == [1, 0]
    ds = pdata.MultiViewDataset(tmp_path / "t")
    views = batched.sources.batched_source(ds, CPU)
    assert views.channels == 1  # views are read as gray, as the loader reads them
    keys = [(c, s) for c in (0, 1) for s in range(15)]
    img, labels = views.batch(keys, None)
    np.testing.assert_array_equal(img[:, 0].numpy(), _loader_views(ds, keys, monkeypatch))
    assert labels.tolist() == [k[0] for k in keys] and len({x.numpy().tobytes() for x in img[15:]}) == 3


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_pattern_views_are_the_loaders_pattern(tmp_path, mode, monkeypatch):
    """3D-OFDB with the random pattern: each view's lit pixels re-stamped with fresh masks, the
    bytes of ``MultiViewDataset(augment="pattern")`` (``ofdb3d.pattern_view``) for the same draws."""
    _write_tree(tmp_path / "t", [24, 24], mode, lit=0.05)
    ds = pdata.MultiViewDataset(tmp_path / "t", augment="pattern")
    pv = batched.sources.batched_source(ds, CPU)
    assert isinstance(pv, batched.sources.PatternViews) and pv.channels == 1
    keys = [(c, s) for c in (0, 1) for s in range(6)]
    img, labels = pv.batch(keys, None)
    assert img.shape == (12, 1, 24, 24) and labels.tolist() == [k[0] for k in keys]
    want = _loader_views(ds, keys, monkeypatch)
    np.testing.assert_array_equal(img[:, 0].numpy(), want)
    assert len({x.tobytes() for x in want}) == 12 and set(np.unique(want)) == {0, 127}
    gray = np.asarray(Image.open(ds.views[0][0]).convert("L"))  # the rule itself, no flip
    tables = batched.draw.PatchTables(24, CPU, batched.sources._Budget(CPU, "test"), flip=False)
    tables.add(ofdb3d.view_pixels(gray))
    tables.finish()
    got = tables.stamp(np.array([0]), [2**40 + 3])[0].numpy()
    np.testing.assert_array_equal(got, ofdb3d.pattern_view(ofdb3d.view_pixels(gray), 24, 2**40 + 3))


def test_a_tree_of_mixed_sizes_is_refused(tmp_path):
    _write_tree(tmp_path / "t", [12, 16])
    with pytest.raises(ParamError, match="pipeline.*one size"):
        batched.sources.batched_source(pdata.MultiViewDataset(tmp_path / "t"), CPU)
    with pytest.raises(ParamError, match="pipeline.*one size"):
        batched.sources.batched_source(pdata.MultiViewDataset(tmp_path / "t", augment="pattern"), CPU)


# ---- augmentation: Pillow's bytes for the same parameters ------------------------------------------
def _images(n, c, h=37, w=41, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    a[0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    a[1] = np.where(rng.random((h, w, 1)) < 0.2, 127, 0)  # a sparse gray picture, like a fractal
    return a


def _pil(a):
    return Image.fromarray(a[..., 0], "L") if a.shape[-1] == 1 else Image.fromarray(a, "RGB")


@pytest.mark.parametrize("kind", ["bicubic", "bilinear"])
@pytest.mark.parametrize("h,w,size", [(362, 362, 224), (48, 48, 32), (50, 60, 224)])
def test_resized_crop_is_pillows(kind, h, w, size):
    import torchvision.transforms.functional as F

    a = _images(8, 1, h, w)
    boxes = batched.transforms.crop_boxes(
        torch.Generator().manual_seed(3), 8, h, w, (0.08, 1.0), (3 / 4, 4 / 3)
    )
    mode = F.InterpolationMode(kind)
    want = [np.asarray(F.resized_crop(_pil(x), *map(int, b), [size, size], mode)) for x, b in zip(a, boxes)]
    got = batched.pil.resized_crop(torch.from_numpy(a).permute(0, 3, 1, 2), boxes, size, kind)
    np.testing.assert_array_equal(got[:, 0].numpy(), np.stack(want))


FACTORS = [0.3, 0.7, 1.0, 1.4, 1.9, 0.1]
FILL = (128, 128, 128)
OPS = {
    "autocontrast": (lambda im, i: ImageOps.autocontrast(im), lambda x: batched.pil.auto_contrast(x)),
    "equalize": (lambda im, i: ImageOps.equalize(im), lambda x: batched.pil.equalize(x)),
    "posterize": (
        lambda im, i: taa.posterize(im, [0, 1, 2, 3, 4, 8][i]),
        lambda x: batched.pil.posterize(x, torch.tensor([0, 1, 2, 3, 4, 8])),
    ),
    "solarize": (
        lambda im, i: ImageOps.solarize(im, [0, 10, 128, 200, 256, 255][i]),
        lambda x: batched.pil.solarize(x, torch.tensor([0, 10, 128, 200, 256, 255])),
    ),
    "solarize_add": (
        lambda im, i: taa.solarize_add(im, [0, 10, 50, 100, 110, 128][i]),
        lambda x: batched.pil.solarize_add(x, torch.tensor([0, 10, 50, 100, 110, 128])),
    ),
    "color": (
        lambda im, i: ImageEnhance.Color(im).enhance(FACTORS[i]),
        lambda x: batched.pil.color(x, torch.tensor(FACTORS)),
    ),
    "contrast": (
        lambda im, i: ImageEnhance.Contrast(im).enhance(FACTORS[i]),
        lambda x: batched.pil.contrast(x, torch.tensor(FACTORS)),
    ),
    "brightness": (
        lambda im, i: ImageEnhance.Brightness(im).enhance(FACTORS[i]),
        lambda x: batched.pil.brightness(x, torch.tensor(FACTORS)),
    ),
    "sharpness": (
        lambda im, i: ImageEnhance.Sharpness(im).enhance(FACTORS[i]),
        lambda x: batched.pil.sharpness(x, torch.tensor(FACTORS)),
    ),
    "smooth": (lambda im, i: im.filter(ImageFilter.SMOOTH), lambda x: batched.pil.smooth(x)),
    "shear": (
        lambda im, i: taa.shear_x(
            im, [0.1, -0.3, 0.27, 0.0, 0.05, -0.12][i], fillcolor=_fill(im), resample=3
        ),
        lambda x: _warp(x, [[1, s, 0, 0, 1, 0] for s in [0.1, -0.3, 0.27, 0.0, 0.05, -0.12]]),
    ),
    "translate": (
        lambda im, i: taa.translate_y_abs(
            im, [3.7, -10.2, 0.0, 15.0, -0.4, 8.8][i], fillcolor=_fill(im), resample=3
        ),
        lambda x: _warp(x, [[1, 0, 0, 0, 1, t] for t in [3.7, -10.2, 0.0, 15.0, -0.4, 8.8]]),
    ),
}
DEGREES = [5.0, -30.0, 12.3, 27.0, -3.3, 0.0]


def _fill(im):
    return FILL if im.mode == "RGB" else FILL[0]


def _warp(x, rows):
    return batched.pil.affine(x, torch.tensor(rows, dtype=torch.float64), FILL[: x.shape[1]])


def _compare(channels, pil_fn, batch_fn):
    a = _images(6, channels)
    want = np.stack([np.asarray(pil_fn(_pil(x), i)).reshape(a.shape[1:]) for i, x in enumerate(a)])
    got = batch_fn(torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1).numpy()
    return np.abs(want.astype(int) - got.astype(int))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("op", sorted(OPS))
def test_randaugment_ops_are_pillows(op, channels):
    assert _compare(channels, *OPS[op]).max() == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_rotation_is_pillows_within_one_level(channels):
    diff = _compare(
        channels,
        lambda im, i: taa.rotate(im, DEGREES[i], fillcolor=_fill(im), resample=3),
        lambda x: _warp(x, [batched.pil.rotation_matrix(d, 41, 37) for d in DEGREES]),
    )
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("inc", [0, 1])
def test_level_rules_are_timms(monkeypatch, inc):
    hparams = {"translate_const": 100, "img_mean": FILL}
    levels = np.array([0.0, 0.4, 3.3, 8.76, 9.0, 10.0])
    for sign, coin in ((1.0, 0.0), (-1.0, 1.0)):  # timm negates when random() > 0.5
        monkeypatch.setattr(random, "random", lambda coin=coin: coin)
        for name in taa._RAND_INCREASING_TRANSFORMS if inc else taa._RAND_TRANSFORMS:
            got = batched.transforms.level_to_arg(name, levels, np.full(6, sign), hparams)
            fn = taa.LEVEL_TO_ARG[name]
            want = None if fn is None else [fn(float(v), hparams)[0] for v in levels]
            assert (got is None and want is None) or np.allclose(got, want, rtol=0, atol=1e-12), name


def test_with_the_loaders_draws_the_batch_is_the_loaders(monkeypatch):
    """timm's crop boxes and flips recorded while the loader makes a batch (mini recipe with the
    paper's flips), then given to the batched pipeline with the batched source's images: the same
    float tensors, bit for bit."""
    from timm.data import transforms as tt
    from torchvision import transforms as T

    from ofdb_study.train.runtime import Keyed

    cfg = phase_config(
        "mini",
        "pretrain",
        categories=4,
        render_size=40,
        render_points=3000,
        render_pad=0,
        hflip=0.5,
        vflip=0.5,
    )
    ds = engine.build_data(cfg)[0]
    boxes, flips = [], {"h": [], "v": []}
    get = tt.RandomResizedCropAndInterpolation.get_params
    monkeypatch.setattr(
        tt.RandomResizedCropAndInterpolation,
        "get_params",
        staticmethod(lambda *a: boxes.append(get(*a)) or boxes[-1]),
    )
    for cls, key in ((T.RandomHorizontalFlip, "h"), (T.RandomVerticalFlip, "v")):

        def forward(self, img, key=key):
            flips[key].append(bool(torch.rand(1) < self.p))
            return (
                img.transpose(Image.FLIP_LEFT_RIGHT if key == "h" else Image.FLIP_TOP_BOTTOM)
                if flips[key][-1]
                else img
            )

        monkeypatch.setattr(cls, "forward", forward)
    ds.transform = augment.train_transform(cfg)
    keys = next(iter(StreamBatches(len(ds), 16, 0, 0, 1)))
    want = torch.stack([Keyed(ds)[k][0] for k in keys])
    aug = batched.transforms.BatchAugment.from_timm(augment.train_transform(cfg))
    drawn = batched.transforms.AugmentParams(
        torch.tensor(boxes), torch.tensor(flips["h"]), torch.tensor(flips["v"]), None, None
    )
    got = aug.apply(batched.sources.batched_source(ds, CPU).batch(keys, None)[0], drawn, None)
    assert torch.equal(got, want)


# ---- augmentation: timm's distributions -------------------------------------------------------------
def _ks(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(
        np.max(
            np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))
        )
    )


KS_LIMIT = 1.95 * math.sqrt(2 / N)  # two-sample KS critical value at alpha = 0.001


def _within(p_hat: float, p: float, n: int, sigmas: float = 4.5) -> bool:
    return abs(p_hat - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_crop_boxes_follow_timms_rule():
    from timm.data.transforms import RandomResizedCropAndInterpolation as RRC

    random.seed(0)
    img = Image.new("L", (362, 300))
    timm_boxes = np.array([RRC.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(N)], dtype=float)
    ours = batched.transforms.crop_boxes(
        torch.Generator().manual_seed(0), N, 300, 362, (0.08, 1.0), (3 / 4, 4 / 3)
    ).numpy()
    for k in range(4):  # top, left, height, width
        assert _ks(timm_boxes[:, k], ours[:, k]) < KS_LIMIT, k
    area = lambda b: b[:, 2] * b[:, 3] / (300 * 362)  # noqa: E731
    aspect = lambda b: np.log(b[:, 3] / b[:, 2])  # noqa: E731
    assert _ks(area(timm_boxes), area(ours)) < KS_LIMIT and _ks(aspect(timm_boxes), aspect(ours)) < KS_LIMIT
    assert (ours[:, 0] + ours[:, 2] <= 300).all() and (ours[:, 1] + ours[:, 3] <= 362).all()


def test_flip_and_erase_rates_and_erase_boxes_follow_timm(paper_aug, monkeypatch):
    from timm.data import random_erasing

    p = paper_aug.params(torch.Generator().manual_seed(1), N, 362, 362)
    assert _within(p.hflip.double().mean().item(), 0.5, N) and _within(p.vflip.double().mean().item(), 0.5, N)
    seen = []
    real = random_erasing._get_pixels
    monkeypatch.setattr(random_erasing, "_get_pixels", lambda *a, **k: seen.append(a[2]) or real(*a, **k))
    random.seed(1)
    erasing = random_erasing.RandomErasing(0.5, mode="pixel", device="cpu")
    x = torch.zeros(3, 224, 224)
    for _ in range(N):
        erasing(x)
    timm_hw = np.array([s[1:] for s in seen], dtype=float)
    ours = p.erase.numpy()
    ours_hw = ours[ours[:, 2] > 0][:, 2:].astype(float)
    assert _within(len(ours_hw) / N, len(timm_hw) / N, N)
    assert _ks(timm_hw[:, 0] * timm_hw[:, 1], ours_hw[:, 0] * ours_hw[:, 1]) < 1.95 * math.sqrt(4 / N)
    assert _ks(
        np.log(timm_hw[:, 0] / timm_hw[:, 1]), np.log(ours_hw[:, 0] / ours_hw[:, 1])
    ) < 1.95 * math.sqrt(4 / N)


def test_randaugment_op_frequencies_and_magnitudes_follow_timm(paper_aug, monkeypatch):
    """timm's RandAugment instrumented (each op records that it ran and its magnitude) against
    our draws: per-op rates within 4.5 sigma, magnitudes by KS."""
    ra = augment.train_transform(phase_config("paper", "pretrain")).transforms[3]
    runs, levels = [], []
    for op in ra.ops:
        real_level = op.level_fn

        def record(level, hparams, name=op.name, real_level=real_level):
            runs.append(name)
            levels.append(level)
            return real_level(level, hparams) if real_level else ()

        monkeypatch.setattr(op, "level_fn", record)
        monkeypatch.setattr(op, "aug_fn", lambda img, *a, **k: img)
    random.seed(2)
    np.random.seed(2)
    img = Image.new("RGB", (4, 4))
    for _ in range(N):
        ra(img)
    ours = paper_aug.ra.params(torch.Generator().manual_seed(2), N)
    names = paper_aug.ra.names
    ran = ours.op[ours.applied].numpy()
    p_op = 2 * 0.5 / len(names)  # expected runs per image of each op: 2 layers x p 0.5 / 15
    for k, name in enumerate(names):
        assert _within(runs.count(name) / (2 * N), p_op / 2, 2 * N), name
        assert _within(np.mean(ran == k) * len(ran) / (2 * N), p_op / 2, 2 * N), name
    assert _ks(np.array(levels), ours.level[ours.applied].numpy()) < 1.95 * math.sqrt(2 / len(levels))
    assert _within(float(ours.applied.double().mean()), 0.5, 2 * N)


# ---- the pipeline -----------------------------------------------------------------------------------
def _device_batches(source, aug, **kw):
    args = {"seed": 3, "batch": 6, "start": 0, "stop": 3, "device": CPU} | kw
    return batched.DeviceBatches(source, aug, **args)


def test_same_seed_same_batches_and_resume_continues(source, small_aug):
    fb = batched.sources.FractalBatches(pdata.OFDBDataset(source, "pattern"), CPU)
    a = list(_device_batches(fb, small_aug))
    b = list(_device_batches(fb, small_aug))
    late = list(_device_batches(fb, small_aug, start=2))
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(late[0][0], a[2][0]) and not torch.equal(a[0][0], a[1][0])
    assert a[0][0].shape == (6, 3, 48, 48) and a[0][0].dtype == torch.float32
    other = list(_device_batches(fb, small_aug, seed=4))
    assert not torch.equal(other[0][0], a[0][0])
    # ranks take their own share of the same sample stream
    keys = StreamBatches(len(fb), 3, 3, 0, 1, rank=1, world=2)
    shard = list(_device_batches(fb, small_aug, batch=3, stop=1, rank=1, world=2))[0]
    assert shard[1].tolist() == [k[0] for k in next(iter(keys))]


def test_repeated_augmentation_takes_the_loaders_keys(source, small_aug):
    """With ``repeated_aug`` k each drawn category fills k consecutive samples, each with its own
    seed, exactly as the loader's sampler (``StreamBatches``)."""
    fb = batched.sources.FractalBatches(pdata.OFDBDataset(source, "pattern"), CPU)
    got = list(_device_batches(fb, small_aug, repeats=3))
    keys = StreamBatches(len(fb), 6, 3, 0, 3, repeats=3)
    assert [y.tolist() for _, y in got] == [[k[0] for k in b] for b in keys]
    y = got[0][1].tolist()
    assert y[0] == y[1] == y[2] and y[3] == y[4] == y[5] and not torch.equal(got[0][0][0], got[0][0][1])


def test_auto_is_the_loader_on_the_cpu_and_the_key_keeps_auto_out():
    cfg = phase_config("smoke", "pretrain")
    assert cfg.pipeline == "auto" and batched.resolve_pipeline(cfg, CPU) == "loader"
    assert batched.resolve_pipeline(cfg, torch.device("cuda", 0)) == "batched"
    ft = phase_config("smoke", "finetune", pipeline="auto")
    assert batched.resolve_pipeline(ft, torch.device("cuda", 0)) == "loader"  # fine-tuning's auto
    assert batched.resolve_pipeline(phase_config("smoke", "finetune"), CPU) == "batched"  # the profile's
    assert batched.resolve_pipeline(ft.replace(pipeline="batched"), CPU) == "batched"  # asked for
    assert "pipeline" not in cfg.result_dict()  # runs cached before the setting keep their keys
    keys = {cfg.replace(pipeline=p).digest() for p in ("auto", "loader", "batched")}
    assert len(keys) == 3


def test_loader_and_batched_both_pretrain_at_smoke(tmp_path):
    summaries = {}
    for pipeline in ("loader", "batched"):
        cfg = phase_config("smoke", "pretrain", pipeline=pipeline, augment="pattern")
        summaries[pipeline] = engine.train(cfg, tmp_path / pipeline, progress=False)
        manifest = json.loads((tmp_path / pipeline / "manifest.json").read_text())
        assert manifest["pipeline"] == summaries[pipeline]["pipeline"] == pipeline
        assert summaries[pipeline]["top1_last"] is not None
    assert summaries["loader"]["weights_sha256"] != summaries["batched"]["weights_sha256"]


@pytest.mark.parametrize("kind", ["1pfrac", "multiview-pattern"])
def test_one_p_frac_and_3d_pattern_pretrain_batched(tmp_path, kind):
    over = {"data": "1pfrac"}
    if kind == "multiview-pattern":
        _write_tree(tmp_path / "views", [32, 32, 32], lit=0.05)
        over = {"data": f"multiview:{tmp_path / 'views'}", "augment": "pattern", "categories": 3}
    cfg = phase_config("smoke", "pretrain", pipeline="batched", **over)
    summary = engine.train(cfg, tmp_path / "run", progress=False)
    assert summary["pipeline"] == "batched" and summary["steps"] == 2
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r)


def test_data_that_do_not_fit_stop_batched_and_send_auto_to_the_loader(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batched.sources, "DATA_SHARE", 0.0)
    args = ["pretrain", "--profile", "smoke", "--no-progress"]
    assert cli.main([*args, "--pipeline", "batched", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pipeline" in err[0] and "--pipeline loader" in err[0]
    assert not (tmp_path / "b").exists()
    monkeypatch.setattr(batched, "resolve_pipeline", lambda cfg, device: "batched")  # as on CUDA
    assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "auto uses the loader" in capsys.readouterr().err
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["pipeline"] == "loader"


def test_resume_refuses_a_run_started_with_the_other_pipeline(tmp_path, monkeypatch):
    cfg = phase_config("smoke", "pretrain")
    monkeypatch.setattr(batched, "resolve_pipeline", lambda cfg, device: "batched")  # as on CUDA
    engine.train(cfg, tmp_path / "run", progress=False)
    (tmp_path / "run" / "summary.json").unlink()  # killed after its last checkpoint
    monkeypatch.undo()
    with pytest.raises(ParamError, match="started with the batched pipeline"):
        engine.train(cfg, tmp_path / "run", resume=True, progress=False)


def test_recipes_the_batched_pipeline_lacks_are_named():
    jitter = phase_config("smoke", "pretrain", auto_augment=None, color_jitter=0.4)
    with pytest.raises(ParamError, match="pipeline.*ColorJitter"):
        batched.transforms.BatchAugment.from_timm(augment.train_transform(jitter))


def test_batched_resume_after_sigkill_is_bit_identical(tmp_path):
    from kill_script import killed_then_resumed

    args = ["pretrain", "--profile", "smoke", "--steps", "4", "--checkpoint-every", "2", "--no-progress"]
    args += ["--pipeline", "batched", "--augment", "both", "--set", "mixup=0.8", "--set", "re_prob=0.5"]
    args += ["--set", "auto_augment=rand-m9-mstd0.5-inc1"]
    a, b = killed_then_resumed(args, 3, tmp_path)
    assert a["weights_sha256"] == b["weights_sha256"] and a["pipeline"] == "batched"


@pytest.mark.slow
def test_batched_under_torchrun_two_cpu_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29519"]
    cmd += ["-m", "ofdb_study", "pretrain", "--profile", "smoke", "--batch-size", "4", "--steps", "3"]
    cmd += ["--pipeline", "batched", "--no-progress", "--out", str(tmp_path / "ddp")]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["global_batch"] == 8 and s["pipeline"] == "batched"
