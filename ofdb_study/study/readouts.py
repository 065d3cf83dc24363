"""Frozen-feature readouts: what a representation holds, read on few labels beside the pixels.

A study whose endpoint is the representation (``StudyPlan.endpoint == "readout"``) reads every arm
(a pre-training run, or a free initialisation: ``random``, ``mimetic``) the same way, on the
downstream set's images (``StudyPlan.dataset``, an in-memory set):

* **Images.** The training images split once into the *control pool*
  (``control_pool_per_class`` per class, a fixed draw: the positive control's supervised
  pre-training images, ``control_pool``) and the *label pool* (the rest). Each seed draws
  ``readout_draws`` labelled subsets of ``readout_per_class`` images per class from the label pool
  (``draw_indices``): never an image the positive control trained on. Every arm of a seed, and
  every pixel baseline, is read on the same subsets and scored on the whole test set.
* **Features** (``features``): ``tokens``, the last block's patch tokens after the final norm,
  flattened (T x D values: about the raw pixels' size, so no information is pooled away), and
  ``pooled``, what the classifier head sees (D values).
* **Readers** (``READERS``): ``probe``, a logistic regression (scikit-learn, standardised
  features, lbfgs from zeros), and ``1nn``, the nearest labelled neighbour (Euclidean).
* **Pixel baselines** (``pixel_baselines``) on the same subsets: the raw pixels read by both
  readers, PCA of the labelled images (``PCA_COMPONENTS``) and a seeded Gaussian random projection
  of the pixels to the token features' size, each read by the probe.

A readout's value is the top-1 (%) on the test set, per draw; an arm's value for a seed is the mean
over its draws. Everything is deterministic (one torch thread, exact neighbours, lbfgs), and cached
as a small JSON file per arm and seed under ``root/readouts`` (``path_of``), named by what
determines it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParamError
from ..files import atomic_write_text
from ..seeds import mix_seed

READOUTS = "readouts"
#: Feature sets read from a model.
FEATURES = ("tokens", "pooled")
#: Classifiers fitted on the labelled subset.
READERS = ("probe", "1nn")
#: Free arms: no pre-training, a seeded initialisation of the same model.
FREE_ARMS = ("random", "mimetic")
#: Pixel baselines: name -> (representation, reader).
PIXEL_BASELINES = {
    "pixels-probe": ("pixels", "probe"),
    "pixels-1nn": ("pixels", "1nn"),
    "pca-probe": ("pca", "probe"),
    "randproj-probe": ("randproj", "probe"),
}
#: PCA components of the pixel baseline (fitted on the labelled subset), at most n - 1.
PCA_COMPONENTS = 48
#: Salt of the control pool's fixed draw.
SALT_POOL = 0xC0DE
#: Salt of a seed's labelled subsets, with (seed, draw).
SALT_DRAW = 0xD4A7
#: Salt of the pixel baseline's random projection, with (seed, draw).
SALT_PROJECTION = 0x9A0E


@dataclass(frozen=True)
class Split:
    """The readout's images, as indices into the downstream training arrays.

    Attributes:
        pool: the control pool (the positive control's pre-training images), sorted.
        draws: one sorted index array per labelled subset of the seed.
    """

    pool: np.ndarray
    draws: tuple[np.ndarray, ...]


def control_pool(labels: np.ndarray, per_class: int) -> np.ndarray:
    """The fixed control pool: ``per_class`` training images per class (sorted indices)."""
    rng = np.random.default_rng(mix_seed(SALT_POOL, per_class))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= per_class:
            raise ParamError(
                "control_pool_per_class", f"class {c} has {len(idx)} images; the pool asks for {per_class}"
            )
        keep.append(rng.choice(idx, size=per_class, replace=False))
    return np.sort(np.concatenate(keep))


def draw_indices(labels: np.ndarray, pool_per_class: int, per_class: int, draws: int, seed: int) -> Split:
    """The control pool and a seed's ``draws`` labelled subsets of ``per_class`` per class, drawn
    from the images outside the pool (each subset on its own stream, so draw d is the same whatever
    the number of draws)."""
    pool = control_pool(labels, pool_per_class) if pool_per_class else np.array([], dtype=np.int64)
    outside = np.setdiff1d(np.arange(len(labels)), pool)
    out = []
    for d in range(draws):
        rng = np.random.default_rng(mix_seed(SALT_DRAW, seed, d))
        keep = []
        for c in np.unique(labels):
            idx = outside[labels[outside] == c]
            if len(idx) < per_class:
                raise ParamError("readout_per_class", f"class {c} has {len(idx)} images outside the pool")
            keep.append(rng.choice(idx, size=per_class, replace=False))
        out.append(np.sort(np.concatenate(keep)))
    return Split(pool, tuple(out))


def _standard_probe(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    clf.fit(xtr, ytr)
    return 100.0 * float((clf.predict(xte) == yte).mean())


def _nn(xtr, ytr, xte, yte) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
    clf.fit(xtr, ytr)
    return 100.0 * float((clf.predict(xte) == yte).mean())


_READ = {"probe": _standard_probe, "1nn": _nn}


def read(features: np.ndarray, test: np.ndarray, labels, test_labels, split: Split) -> dict[str, list[float]]:
    """Each reader's top-1 (%) per draw, on ``features`` (N_train, F) indexed by the split."""
    out = {}
    for reader, fit in _READ.items():
        out[reader] = [round(fit(features[i], labels[i], test, test_labels), 3) for i in split.draws]
    return out


def pixel_baselines(images, labels, test_images, test_labels, split: Split, seed: int, dims: int) -> dict:
    """The pixel baselines (``PIXEL_BASELINES``) on the split's subsets: top-1 (%) per draw.

    Args:
        images, test_images: uint8 (N, H, W[, 3]).
        dims: the random projection's size (the token features' size).
    """
    from sklearn.decomposition import PCA

    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    test = test_images.reshape(len(test_images), -1).astype(np.float64) / 255.0
    out = {name: [] for name in PIXEL_BASELINES}
    for d, idx in enumerate(split.draws):
        xtr, ytr = flat[idx], labels[idx]
        out["pixels-probe"].append(_standard_probe(xtr, ytr, test, test_labels))
        out["pixels-1nn"].append(_nn(xtr, ytr, test, test_labels))
        pca = PCA(n_components=min(PCA_COMPONENTS, len(idx) - 1), svd_solver="full").fit(xtr)
        out["pca-probe"].append(_standard_probe(pca.transform(xtr), ytr, pca.transform(test), test_labels))
        rng = np.random.default_rng(mix_seed(SALT_PROJECTION, seed, d))
        proj = rng.standard_normal((flat.shape[1], dims)) / np.sqrt(dims)
        out["randproj-probe"].append(_standard_probe(xtr @ proj, ytr, test @ proj, test_labels))
    return {k: [round(v, 3) for v in vals] for k, vals in out.items()}


def features(model, dataset, batch: int = 500) -> dict[str, np.ndarray]:
    """The frozen features of ``dataset``'s images: ``tokens`` (N, T x D), the last block's patch
    tokens after the final norm, and ``pooled`` (N, D), the head's input."""
    import torch

    tokens, pooled = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(dataset), batch):
            x = torch.stack([dataset[j][0] for j in range(i, min(i + batch, len(dataset)))])
            f = model.forward_features(x)
            tokens.append(f[:, model.num_prefix_tokens :].flatten(1).numpy())
            pooled.append(model.forward_head(f, pre_logits=True).numpy())
    return {
        "tokens": np.concatenate(tokens).astype(np.float64),
        "pooled": np.concatenate(pooled).astype(np.float64),
    }


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts], sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Arm:
    """One arm of one seed to read.

    Attributes:
        row: the study row (a pre-training row, or a free arm: ``FREE_ARMS``).
        seed: the seed (the arm's initialisation and its labelled subsets).
        weights: the pre-training run folder whose weights are read; None for a free arm.
        categories: the pre-training's category count (None for a free arm).
    """

    row: str
    seed: int
    weights: Path | None = None
    categories: int | None = None


def settings(profile: str, data_root: str | None = None) -> dict:
    """What a profile's readouts depend on, besides the arm: the data set, the subsets, the model."""
    from ..config import get_profile, phase_config

    plan = get_profile(profile).study
    cfg = phase_config(profile, "finetune", dataset=plan.dataset, data_root=data_root)
    return {
        "dataset": plan.dataset,
        "per_class": plan.readout_per_class,
        "draws": plan.readout_draws,
        "pool_per_class": plan.control_pool_per_class,
        "model": cfg.model_key() if hasattr(cfg, "model_key") else _model_key(cfg),
        "eval": _eval_key(cfg),
        "pca": PCA_COMPONENTS,
    }


def _model_key(cfg) -> dict:
    return {
        k: getattr(cfg, k)
        for k in ("model", "img_size", "patch_size", "depth", "embed_dim", "num_heads", "global_pool")
    }


def _eval_key(cfg) -> dict:
    from ..train import augment

    return {k: str(v) for k, v in augment.eval_settings(cfg).items()}


def path_of(arm: Arm, profile: str, root, data_root: str | None = None) -> Path:
    """The cache file of ``arm``'s readouts: named by row, seed and a digest of the settings and of
    the weights' run folder name (which holds the run's config digest)."""
    source = arm.row if arm.weights is None else Path(arm.weights).name
    key = digest(settings(profile, data_root), source, arm.seed)
    size = f"-c{arm.categories}" if arm.categories else ""
    return Path(root) / READOUTS / f"{arm.row}{size}-s{arm.seed}-{key}.json"


def _model(cfg, classes: int, arm: Arm):
    from ..seeds import SALT_INIT
    from ..train import models
    from ..train.runtime import seed_all

    seed_all(mix_seed(arm.seed, SALT_INIT))  # a scratch run's initial weights
    model = models.create_model(cfg, classes)
    if arm.row == "mimetic":
        models.mimetic_init_(model, mix_seed(arm.seed, SALT_INIT))
    elif arm.weights is not None:
        models.load_pretrained(model, Path(arm.weights))
    elif arm.row != "random":
        raise ParamError("row", f"{arm.row} has no weights to read and is not one of {', '.join(FREE_ARMS)}")
    return model


class _Tensors:
    """Images already through the evaluation transform: item i -> (tensor, label)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


_TEST_CACHE: dict = {}


def _test_images(dataset: str, data_root, key: str, transform) -> _Tensors:
    """The whole test set through the evaluation transform, once per process and settings (every
    arm of a study reads the same test images)."""
    import torch

    from ..train import downstream

    name = (dataset, data_root, key)
    if name not in _TEST_CACHE:
        _, _, xte, yte, _ = downstream._arrays(dataset, data_root, False)
        data = downstream.ArrayDataset(xte, yte, transform)
        _TEST_CACHE.clear()
        _TEST_CACHE[name] = _Tensors(torch.stack([data[i][0] for i in range(len(data))]), yte)
    return _TEST_CACHE[name]


def read_arm(arm: Arm, profile: str, root, data_root: str | None = None) -> dict:
    """``arm``'s readouts on its seed's subsets (cached; see the module docstring).

    Returns:
        ``{"row", "seed", "categories", "readouts": {"tokens-probe": [top-1 per draw], ...},
        "features": {"tokens": F, "pooled": D}, "data_hash", "seconds"}``.
    """
    import torch

    from ..config import get_profile, phase_config
    from ..train import augment, downstream

    path = path_of(arm, profile, root, data_root)
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    plan = get_profile(profile).study
    cfg = phase_config(profile, "finetune", dataset=plan.dataset, data_root=data_root, seed=arm.seed)
    xtr, ytr, xte, yte, data_hash = downstream._arrays(cfg.dataset, cfg.data_root, cfg.download)
    classes = downstream.NUM_CLASSES[cfg.dataset]
    split = draw_indices(
        ytr, plan.control_pool_per_class, plan.readout_per_class, plan.readout_draws, arm.seed
    )
    needed = np.unique(np.concatenate(split.draws))
    local = Split(split.pool, tuple(np.searchsorted(needed, i) for i in split.draws))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _model(cfg, classes, arm)
        transform = augment.eval_transform(cfg)
        ftr = features(model, downstream.ArrayDataset(xtr[needed], ytr[needed], transform))
        fte = features(
            model,
            _test_images(cfg.dataset, cfg.data_root, json.dumps(_eval_key(cfg), sort_keys=True), transform),
        )
    finally:
        torch.set_num_threads(threads)
    readouts = {}
    for name in FEATURES:
        for reader, values in read(ftr[name], fte[name], ytr[needed], yte, local).items():
            readouts[f"{name}-{reader}"] = values
    out = {
        "row": arm.row,
        "seed": arm.seed,
        "categories": arm.categories,
        "weights": None if arm.weights is None else Path(arm.weights).name,
        "readouts": readouts,
        "features": {k: int(v.shape[1]) for k, v in ftr.items()},
        "data_hash": data_hash,
        "seconds": round(time.perf_counter() - started, 2),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return out


def baseline_path(profile: str, seed: int, root, data_root: str | None = None) -> Path:
    key = digest(settings(profile, data_root), "pixels", seed)
    return Path(root) / READOUTS / f"pixels-s{seed}-{key}.json"


def read_pixels(profile: str, seed: int, root, data_root: str | None = None) -> dict:
    """The pixel baselines of ``seed``'s subsets (cached): ``{"seed", "readouts": {...}, ...}``;
    the random projection has the token features' size."""
    from ..config import get_profile, phase_config
    from ..train import downstream

    path = baseline_path(profile, seed, root, data_root)
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    plan = get_profile(profile).study
    cfg = phase_config(profile, "finetune", dataset=plan.dataset, data_root=data_root, seed=seed)
    xtr, ytr, xte, yte, data_hash = downstream._arrays(cfg.dataset, cfg.data_root, cfg.download)
    split = draw_indices(ytr, plan.control_pool_per_class, plan.readout_per_class, plan.readout_draws, seed)
    tokens = (cfg.img_size // cfg.patch_size) ** 2 * int(cfg.embed_dim or 0)
    out = {
        "row": "pixels",
        "seed": seed,
        "readouts": pixel_baselines(xtr, ytr, xte, yte, split, seed, tokens or 768),
        "data_hash": data_hash,
        "seconds": round(time.perf_counter() - started, 2),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return out


def control_tree_path(profile: str, root) -> Path:
    """Where the study writes its positive control's pre-training images (``control_tree``)."""
    plan = get_plan(profile)
    key = digest(plan.dataset, plan.control_pool_per_class, SALT_POOL)
    name = f"{plan.dataset}-pool{plan.control_pool_per_class}-{key[:8]}"
    return (Path(root) / "data" / name).resolve()


def get_plan(profile: str):
    from ..config import get_profile

    return get_profile(profile).study


def control_tree(profile: str, root, data_root: str | None = None) -> Path:
    """Write (once) the control pool as an ImageFolder tree ``<class:05d>/<index:05d>.png``, with a
    ``manifest.json`` naming the data set's hash and the pool; returns its folder. Written into a
    staging folder and renamed, so a reader never sees half a tree and two writers cannot mix."""
    import shutil
    import tempfile

    from PIL import Image

    from ..fractals.build import MANIFEST
    from ..train import downstream

    path = control_tree_path(profile, root)
    if (path / MANIFEST).is_file():
        return path
    plan = get_plan(profile)
    xtr, ytr, _, _, data_hash = downstream._arrays(plan.dataset, data_root, False)
    pool = control_pool(ytr, plan.control_pool_per_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        for i in pool:
            folder = staging / f"{int(ytr[i]):05d}"
            folder.mkdir(exist_ok=True)
            Image.fromarray(np.ascontiguousarray(xtr[i])).save(folder / f"{int(i):05d}.png")
        ids = hashlib.sha256(np.ascontiguousarray(pool).tobytes()).hexdigest()
        manifest = {
            "kind": "control-pool",
            "dataset": plan.dataset,
            "data_hash": data_hash,
            "per_class": plan.control_pool_per_class,
            "images": int(len(pool)),
            "dataset_sha256": hashlib.sha256(f"{data_hash}:{ids}".encode()).hexdigest(),
        }
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        try:
            staging.rename(path)
        except OSError:  # another process wrote it first
            if not (path / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def arms_of(specs, profile: str, seeds=None) -> list[Arm]:
    """The arms a readout plan reads: every finished pre-training of ``specs`` and each seed's free
    arms (``StudyPlan.controls`` that are ``FREE_ARMS``)."""
    plan = get_plan(profile)
    seeds = sorted({s.seed for s in specs} | set(seeds or []))
    arms = [Arm(r, seed) for seed in seeds for r in plan.controls if r in FREE_ARMS]
    arms += [Arm(s.row, s.seed, s.path, s.categories) for s in specs if s.phase == "pretrain" and s.finished]
    return arms


def _arm_job(job):
    arm, profile, root, data_root = job
    return read_arm(arm, profile, root, data_root)


def _pixel_job(job):
    seed, profile, root, data_root = job
    return read_pixels(profile, seed, root, data_root)


def compute(specs, profile: str, root, *, data_root: str | None = None, workers: int = 1, log=print) -> dict:
    """Read every arm of a readout plan and each seed's pixel baselines (cached).

    Returns:
        ``{"arms": n, "pixels": m, "seconds": wall}``.
    """
    started = time.perf_counter()
    arms = arms_of(specs, profile)
    seeds = sorted({a.seed for a in arms})
    jobs = [
        (_arm_job, (a, profile, root, data_root))
        for a in arms
        if not path_of(a, profile, root, data_root).is_file()
    ]
    jobs += [
        (_pixel_job, (s, profile, root, data_root))
        for s in seeds
        if not baseline_path(profile, s, root, data_root).is_file()
    ]
    log(f"readouts: {len(jobs)} of {len(arms) + len(seeds)} to compute")
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_call, jobs))
    else:
        for job in jobs:
            _call(job)
    return {"arms": len(arms), "pixels": len(seeds), "seconds": round(time.perf_counter() - started, 1)}


def _call(job):
    fn, args = job
    return fn(args)


def table(specs, profile: str, root, *, data_root: str | None = None):
    """The readouts of a plan as one long table (pandas): columns arm, seed, categories, readout,
    top1 (the mean over the seed's draws, %), draws (the per-draw values). Pixel baselines are arms
    named after ``PIXEL_BASELINES`` with readout ``pixels``; missing caches are skipped."""
    import pandas as pd

    rows = []
    arms = arms_of(specs, profile)
    for a in arms:
        path = path_of(a, profile, root, data_root)
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        for name, values in doc["readouts"].items():
            rows.append(
                dict(
                    arm=a.row,
                    seed=a.seed,
                    categories=a.categories,
                    readout=name,
                    top1=float(np.mean(values)),
                    draws=values,
                )
            )
    for seed in sorted({a.seed for a in arms}):
        path = baseline_path(profile, seed, root, data_root)
        if not path.is_file():
            continue
        for name, values in json.loads(path.read_text())["readouts"].items():
            rows.append(
                dict(
                    arm=name,
                    seed=seed,
                    categories=None,
                    readout="pixels",
                    top1=float(np.mean(values)),
                    draws=values,
                )
            )
    return pd.DataFrame(rows, columns=["arm", "seed", "categories", "readout", "top1", "draws"])
