"""The GPU check's first 20 seconds: what the machine holds, and whether the package's GPU path loads.

    python benchmarks/preflight.py [--json OUT] [--dry-run]

Prints, one line each as it is found: Python and the versions of torch (its CUDA and cuDNN),
torchvision, numpy, timm, numba, pandas, scikit-learn, Pillow, PyYAML and pytest; the card, its
memory free and in all, its compute capability and bf16; that the numba kernels import; and that
``BatchAugment.from_timm`` reads the ``paper`` recipe's timm transform (pre-training and fine-tuning).
A check that fails prints ``FAILED`` with its one-line error and the rest go on. ``--json`` writes
every line as ``{"check": ..., "ok": ..., "value": ...}``, rewritten after each; the exit status is 1 if a check failed.
``--dry-run`` says that no card is expected (a CPU run of the GPU check).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "timm",
    "numba",
    "pandas",
    "scikit-learn",
    "pillow",
    "PyYAML",
    "pytest",
)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _card(dry_run: bool) -> str:
    import torch

    if not torch.cuda.is_available():
        if dry_run:
            return "none (CPU dry run)"
        raise RuntimeError("torch sees no CUDA device")
    free, total = torch.cuda.mem_get_info(0)
    props = torch.cuda.get_device_properties(0)
    return (
        f"{props.name}, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB, "
        f"compute capability {props.major}.{props.minor}, bf16 {torch.cuda.is_bf16_supported()}, "
        f"{torch.cuda.device_count()} device(s)"
    )


def _torch() -> str:
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, {torch.get_num_threads()} threads"


def _kernels() -> str:
    from ofdb_study.fractals import kernels, kernels3d

    return f"{kernels.__name__}, {kernels3d.__name__} import"


def _from_timm(phase: str) -> str:
    from ofdb_study.config import phase_config
    from ofdb_study.train import augment, batched

    aug = batched.transforms.BatchAugment.from_timm(augment.train_transform(phase_config("paper", phase)))
    ra = "RandAugment" if aug.ra is not None else "no RandAugment"
    return f"{aug.size} px crop, {ra}, erasing {'on' if aug.erase else 'off'}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--dry-run", action="store_true", help="a CPU run: no card expected")
    args = p.parse_args(argv)
    checks = [("python", lambda: f"{platform.python_version()} ({sys.executable})")]
    checks += [(name, lambda name=name: _version(name)) for name in PACKAGES]
    checks += [
        ("torch build", _torch),
        ("card", lambda: _card(args.dry_run)),
        ("numba kernels", _kernels),
        ("from_timm, paper pre-training", lambda: _from_timm("pretrain")),
        ("from_timm, paper fine-tuning", lambda: _from_timm("finetune")),
        ("cpus", lambda: f"{len(os.sched_getaffinity(0))} usable"),
    ]
    results = []
    for name, fn in checks:
        try:
            value, ok = fn(), True
        except Exception as e:  # noqa: BLE001  (every check reports; the next one runs)
            value, ok = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", False
        print(f"{name:32} {value}" if ok else f"{name:32} FAILED: {value}", flush=True)
        results.append({"check": name, "ok": ok, "value": value})
        if args.json:  # after every check: a preflight cut short keeps what it found
            args.json.write_text(json.dumps({"checks": results}, indent=1) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
