"""Every Table-1 option, the in-memory sources and the timm recipes produce the right tensors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from ofdb_study.config import phase_config  # noqa: E402
from ofdb_study.errors import ParamError  # noqa: E402
from ofdb_study.train import augment, pretrain_data  # noqa: E402


@pytest.fixture(scope="module")
def source(searched):
    cats = searched.categories[:3]
    return pretrain_data.FractalSource(cats, size=32, n_points=1500, pad=1)


@pytest.fixture(scope="module")
def cfg():
    return phase_config("smoke", "pretrain")


@pytest.mark.parametrize("option", augment.INSTANCE_AUGMENTS)
def test_every_option_gives_tensor(source, cfg, option):
    ds = pretrain_data.OFDBDataset(source, option, augment.train_transform(cfg))
    x, y = ds[1]
    assert x.shape == (3, cfg.img_size, cfg.img_size) and x.dtype == torch.float32 and y == 1
    np.random.seed(5)
    a = ds.image(2)
    np.random.seed(5)
    b = ds.image(2)
    assert a.shape == (32, 32) and a.dtype == np.uint8 and a.any()
    np.testing.assert_array_equal(a, b)  # seeded


def test_default_is_fixed_and_pattern_varies(source):
    rng = np.random.default_rng(0)
    d1 = augment.instance_image(source, 0, "default", rng)
    d2 = augment.instance_image(source, 0, "default", rng)
    p1 = augment.instance_image(source, 0, "pattern", rng)
    p2 = augment.instance_image(source, 0, "pattern", rng)
    np.testing.assert_array_equal(d1, d2)
    assert not np.array_equal(p1, p2)


def test_texture_keeps_background_black(source):
    img = source.fixed_image(0)
    tex = augment.random_texture(img, np.random.default_rng(3))
    assert tex.shape == img.shape
    assert np.all(tex[img == 0] == 0) and np.all(tex[img > 0] > 0)
    assert len(np.unique(tex[img > 0])) > 5


def test_rotation_is_a_fractaldb_flip(source):
    base = source.fixed_image(1)
    flips = [augment.flip(base, f) for f in augment.FLIPS]
    for seed in range(6):
        out = augment.instance_image(source, 1, "rotation", np.random.default_rng(seed))
        assert any(np.array_equal(out, f) for f in flips)


def test_fractaldb_instances(source, cfg):
    ds = pretrain_data.FractalDBDataset(source, augment.train_transform(cfg))
    assert len(ds) == 3000
    x, y = ds[1999]
    assert x.shape == (3, cfg.img_size, cfg.img_size) and y == 1
    np.testing.assert_array_equal(ds.image(1234), ds.image(1234))


def test_unknown_augment(source):
    with pytest.raises(ParamError, match="augment"):
        pretrain_data.OFDBDataset(source, "sparkles")


def test_mixup_only_when_active(cfg):
    assert augment.build_mixup(cfg.replace(mixup=0.0, cutmix=0.0), 4) is None
    mix = augment.build_mixup(cfg.replace(mixup=0.8, cutmix=1.0), 4)
    x, t = mix(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert x.shape == (4, 3, 32, 32) and t.shape == (4, 4)


def test_paper_transform_at_224():
    from PIL import Image

    cfg = phase_config("paper", "pretrain")
    tf = augment.train_transform(cfg)
    x = tf(Image.new("RGB", (362, 362), (127, 127, 127)))
    assert x.shape == (3, 224, 224)
    names = " ".join(type(t).__name__ for t in tf.transforms)
    assert "RandomResizedCrop" in names and "RandomErasing" in names and "RandAugment" in names


def _write_png_tree(root, classes=2, per_class=3):
    from PIL import Image

    for c in range(classes):
        d = root / f"{c:05d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (20, 20), 40 * i + 10 * c).save(d / f"view_{i:02d}.png")


def test_multiview_and_imagefolder_sources(tmp_path, cfg):
    _write_png_tree(tmp_path / "views")
    for data in (f"multiview:{tmp_path / 'views'}", str(tmp_path / "views")):
        train, ev, n, digest = pretrain_data.pretrain_datasets(
            cfg.replace(data=data), augment.train_transform(cfg), None
        )
        assert n == 2 and len(digest) == 64
        x, y = train[len(train) - 1]
        assert x.shape == (3, cfg.img_size, cfg.img_size) and y == 1
    with pytest.raises(ParamError):
        pretrain_data.pretrain_datasets(cfg.replace(data=str(tmp_path / "missing")), None, None)
