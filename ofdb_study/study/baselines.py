"""What the arms stand beside, on the same images: raw-pixel classifiers and linear probes.

* ``raw_pixels(cfg)``: softmax regression and 1-nearest-neighbour (scikit-learn) on the raw pixels
  of the fine-tuning run's training images (the same K per class, drawn from the same seed), scored
  on the whole test set. A fine-tuned ViT below them has learned less than a linear classifier.
* ``linear_probe(cfg, init)``: the frozen features of a pre-trained model (or of a randomly
  initialised one, ``init="scratch"``), pooled as the classifier head sees them, with a logistic
  regression fitted on the same training images and scored on the whole test set: what the
  representation holds, without fine-tuning.

Both are deterministic (lbfgs from zeros, exact neighbours; features on one thread). Results are
cached as small JSON files under ``root/baselines`` and ``root/probes``, named by the settings and
a digest of what determines them, written atomically; ``compute(specs, root)`` makes the ones a
plan needs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..errors import ParamError
from ..files import atomic_write_text
from ..train.runinfo import CHECKPOINT
from .plan import RunSpec, _tag

BASELINES, PROBES = "baselines", "probes"
#: The raw-pixel baselines: softmax regression and 1-nearest-neighbour.
RAW_PIXEL_METHODS = ("softmax", "1-nn")
#: Rows whose pre-training the study probes (its primary comparisons), and the random-init probe.
PROBE_ROWS = ("ofdb", "ofdb+pattern", "fractaldb", "ofdb+fluctuation")


def _arrays(cfg: TrainConfig):
    """(train images, train labels, test images, test labels, data hash) of ``cfg``'s fine-tuning set."""
    from ..train import downstream
    from ..train.engine import subset_seed

    if cfg.dataset.startswith(downstream.IMAGEFOLDER_PREFIX):
        raise ParamError("dataset", f"baselines need an in-memory data set, not {cfg.dataset}")
    train, test, classes, digest = downstream.load_downstream(
        cfg.dataset,
        data_root=cfg.data_root,
        download=cfg.download,
        train_per_class=cfg.train_per_class,
        seed=subset_seed(cfg),
        test_per_class=cfg.test_per_class,
    )
    return train, test, classes, digest


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _softmax_top1(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))
    clf.fit(xtr, ytr)
    return 100.0 * float((clf.predict(xte) == yte).mean())


def _nn_top1(xtr, ytr, xte, yte) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
    clf.fit(xtr, ytr)
    return 100.0 * float((clf.predict(xte) == yte).mean())


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:10]


def raw_pixels_path(cfg: TrainConfig, root) -> Path:
    from ..train.engine import subset_seed

    name = f"{_tag(cfg.dataset)}-k{cfg.train_per_class}-s{subset_seed(cfg)}"
    key = _key(cfg.dataset, cfg.train_per_class, cfg.test_per_class, subset_seed(cfg))
    return Path(root) / BASELINES / f"{name}-{key}.json"


def raw_pixels(cfg: TrainConfig, root) -> dict:
    """Softmax regression and 1-NN on raw pixels of ``cfg``'s training images (cached).

    Returns:
        ``{"softmax": top-1 %, "1-nn": top-1 %, "train_images": n, "test_images": m, ...}``.
    """
    from ..train.engine import subset_seed

    path = raw_pixels_path(cfg, root)
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    train, test, _, digest = _arrays(cfg)
    xtr, xte = _pixels(train.images), _pixels(test.images)
    ytr, yte = train.labels, test.labels
    out = {
        "dataset": cfg.dataset,
        "train_per_class": cfg.train_per_class,
        "subset_seed": subset_seed(cfg),
        "data_hash": digest,
        "train_images": len(ytr),
        "test_images": len(yte),
        "softmax": round(_softmax_top1(xtr, ytr, xte, yte), 2),
        "1-nn": round(_nn_top1(xtr, ytr, xte, yte), 2),
    }
    out["seconds"] = round(time.perf_counter() - started, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return out


def probe_path(cfg: TrainConfig, root) -> Path:
    """Where the linear probe of the fine-tuning ``cfg``'s starting point on its training images is
    cached. Named by the fine-tuning's digest, which counts its ``init`` by the pre-training run's
    folder name: the same file wherever the runs live (another ``--root``, an unpacked archive)."""
    init = Path(cfg.init or "scratch")
    start = "scratch" if str(init) == "scratch" else (init.parent if init.name == CHECKPOINT else init).name
    return Path(root) / PROBES / f"{_tag(cfg.dataset)}-{_tag(start)}-s{cfg.seed}-{cfg.digest()[:10]}.json"


def files_of(cfg: TrainConfig, root) -> list[Path]:
    """The baseline and probe files that belong to the fine-tuning ``cfg`` (those that exist)."""
    return [p for p in (raw_pixels_path(cfg, root), probe_path(cfg, root)) if p.is_file()]


def _features(model, dataset, batch: int = 500) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(dataset), batch):
            x = torch.stack([dataset[j][0] for j in range(i, min(i + batch, len(dataset)))])
            out.append(model.forward_head(model.forward_features(x), pre_logits=True).numpy())
    return np.concatenate(out).astype(np.float64)


def linear_probe(finetune: RunSpec, root) -> dict:
    """Logistic regression on the frozen features of ``finetune``'s starting weights (cached).

    The features are the model's pooled pre-logits (B, D) of the evaluation transform of each
    image; a fine-tuning from scratch probes the random initialisation its seed draws.

    Returns:
        ``{"row": ..., "seed": ..., "probe_top1": top-1 %, "features": D, ...}``.
    """
    import torch

    from ..train import augment, downstream
    from ..train.models import create_model, load_pretrained

    path = probe_path(finetune.cfg, root)
    if path.is_file():
        return json.loads(path.read_text())
    cfg = finetune.cfg
    if finetune.needs is not None and not Path(cfg.init).exists():
        raise ParamError("init", f"no checkpoint at {cfg.init} to probe")
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads or 1))
    try:
        train, test, classes, digest = _arrays(cfg)
        transform = augment.eval_transform(cfg)
        train = downstream.ArrayDataset(train.images, train.labels, transform)
        test = downstream.ArrayDataset(test.images, test.labels, transform)
        torch.manual_seed(cfg.seed)
        model = create_model(cfg, classes)
        if finetune.needs is not None:
            load_pretrained(model, cfg.init)
        model.eval()
        ftr, fte = _features(model, train), _features(model, test)
    finally:
        torch.set_num_threads(threads)
    out = {
        "row": finetune.row,
        "seed": finetune.seed,
        "init": "scratch" if finetune.needs is None else str(finetune.needs),
        "dataset": cfg.dataset,
        "data_hash": digest,
        "features": int(ftr.shape[1]),
        "probe_top1": round(_softmax_top1(ftr, train.labels, fte, test.labels), 2),
        "seconds": round(time.perf_counter() - started, 2),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return out


def probed(specs: list[RunSpec]) -> list[RunSpec]:
    """The fine-tunings of ``specs`` whose starting point the study probes (``PROBE_ROWS``, scratch)."""
    from ..config import get_profile

    return [
        s
        for s in specs
        if s.phase == "finetune"
        and (
            s.row == "scratch"
            or (s.row in PROBE_ROWS and s.categories == get_profile(s.cfg.profile).study.categories)
        )
    ]


def _job(job: tuple) -> tuple[str, dict]:
    kind, spec, root = job
    if kind == BASELINES:
        return kind, raw_pixels(spec.cfg, root)
    return kind, linear_probe(spec, root)


def compute(specs: list[RunSpec], root, *, workers: int = 1, log=print) -> dict:
    """Make the raw-pixel baselines (one per seed's subset) and probes the plan ``specs`` needs.

    Returns:
        ``{"baselines": n, "probes": m, "seconds": wall}``.
    """
    started = time.perf_counter()
    seen, jobs = set(), []
    for s in specs:
        if s.phase != "finetune":
            continue
        path = raw_pixels_path(s.cfg, root)
        if path not in seen:
            seen.add(path)
            jobs.append((BASELINES, s, root))
    jobs += [(PROBES, s, root) for s in probed(specs) if s.finished]
    todo = [
        j
        for j in jobs
        if not (
            raw_pixels_path(j[1].cfg, root) if j[0] == BASELINES else probe_path(j[1].cfg, root)
        ).is_file()
    ]
    log(f"baselines and probes: {len(todo)} of {len(jobs)} to compute")
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_job, todo))
    else:
        for j in todo:
            _job(j)
    n_base = sum(1 for j in jobs if j[0] == BASELINES)
    return {
        "baselines": n_base,
        "probes": len(jobs) - n_base,
        "seconds": round(time.perf_counter() - started, 1),
    }
