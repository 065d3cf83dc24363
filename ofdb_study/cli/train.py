"""``pretrain`` and ``finetune`` subcommands of ``python -m ofdb_study``.

Examples::

    python -m ofdb_study pretrain --profile mini --data ofdb --categories 100 --augment pattern --out runs/p
    python -m ofdb_study finetune --profile mini --dataset fashion-mnist --init runs/p/checkpoint.pt --out runs/f
    torchrun --nproc-per-node 8 -m ofdb_study pretrain --profile paper --data ofdb --batch-size 32 --out runs/paper

Any other setting of ``config.TrainConfig`` can be given as ``--set KEY=VALUE``; VALUE is read as
the setting's type (a number, true/false, text), and as YAML for lists and optional settings.
"""

from __future__ import annotations

import argparse

import yaml

from ..config import PROFILES
from ..errors import ParamError


def _typed(key: str, text: str):
    """``text`` as the type ``TrainConfig`` declares for ``key``: ``1e-3`` is a float for a float
    setting, ``5`` a float too, a string setting keeps the text, ``null`` clears an optional
    setting, and tuples are YAML lists of numbers."""
    import dataclasses
    import math

    from ..config import TrainConfig

    fields = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    if key not in fields:
        raise ParamError(key, f"unknown setting; known: {', '.join(sorted(fields))}")
    declared = fields[key]
    optional = declared.endswith(" | None")
    base = declared.removesuffix(" | None")
    if optional and text.lower() in ("null", "none", "~", ""):
        return None
    try:
        if base == "bool":
            value = yaml.safe_load(text)
            if not isinstance(value, bool):
                raise ValueError
        elif base == "int":
            value = int(text)
        elif base == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        elif base == "str":
            value = text
        else:  # tuple[float, ...]
            value = yaml.safe_load(text)
            if not isinstance(value, list) or not all(isinstance(v, (int, float)) for v in value):
                raise ValueError
            value = tuple(float(v) for v in value)
    except (ValueError, yaml.YAMLError):
        allowed = {"bool": "true or false", "int": "an integer", "float": "a finite number"}.get(
            base, "text" if base == "str" else "a list of numbers, e.g. [0.5, 1.0]"
        )
        raise ParamError(key, f"--set {key}= expects {allowed}, got {text!r}") from None
    return value


#: Settings the command itself decides: the phase is the command's, the profile is ``--profile``.
_NOT_SET = {"phase": "the command (pretrain or finetune)", "profile": "--profile"}


def _parse_sets(items: list[str] | None, phase: str | None = None) -> dict:
    """``--set KEY=VALUE`` items as typed settings. A setting the command decides (``phase``,
    ``profile``), one given twice, and (given ``phase``) one only the other phase reads are refused."""
    from ..config import FINETUNE_ONLY, PRETRAIN_ONLY

    out = {}
    other = {"pretrain": FINETUNE_ONLY, "finetune": PRETRAIN_ONLY}.get(phase, frozenset())
    for item in items or []:
        if "=" not in item:
            raise ParamError("set", f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key in _NOT_SET:
            raise ParamError(key, f"is set by {_NOT_SET[key]}, not by --set")
        if key in out:
            raise ParamError(key, f"--set {key}= is given twice")
        if key in other:
            raise ParamError(
                key,
                f"only {'fine-tuning' if phase == 'pretrain' else 'pre-training'} reads it; {phase} does not take --set {key}=",
            )
        out[key] = _typed(key, value.strip())
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", default="mini", choices=tuple(PROFILES), help="config.PROFILES (default mini)"
    )
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the profile's)")
    p.add_argument("--seed", type=int, help="run seed (default: the profile's, 0)")
    p.add_argument("--batch-size", type=int, help="per process; the global batch is this x world size")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--num-workers", type=int, help="data-loading processes")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile (CUDA only)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--force", action="store_true", help="replace a run already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other config setting")


def _overrides(args, keys: tuple[str, ...], phase: str | None = None) -> dict:
    """The flags' settings and ``--set``'s; a setting given both ways is refused (one source each)."""
    over = {
        k: getattr(args, k)
        for k in ("steps", "seed", "batch_size", "checkpoint_every", "num_workers", "compile") + keys
    }
    sets = _parse_sets(args.set, phase)
    for key in sets:
        if over.get(key) is not None:
            flag = "--" + key.replace("_", "-")
            raise ParamError(key, f"given twice: {flag} {over[key]} and --set {key}={sets[key]}; pass one")
    over.update(sets)
    return over


def _check_kind_settings(cfg, sets: dict) -> None:
    """Refuse a ``--set`` of a data kind's own option (1p-frac's ``delta`` and ``sigma``) for a
    pre-training on another kind, which would not read it (``fractals.kinds``)."""
    from ..fractals.kinds import KINDS, kind_of

    kind = kind_of(cfg.data)
    for key in sets:
        takers = [k.name for k in KINDS.values() if key in k.options]
        if key != "params" and takers and key not in kind.options:
            raise ParamError(
                key, f"only {', '.join(takers)} data reads it; --data {cfg.data} ({kind.name}) does not"
            )


def _config(args, phase: str, keys: tuple[str, ...]):
    """The run's ``TrainConfig``: the profile's with the command line's settings; a pre-training
    on a folder tree takes its category count from the tree (``pretrain_data.tree_categories``)."""
    from ..config import phase_config

    over = _overrides(args, keys, phase)
    cfg = phase_config(args.profile, phase, **over)
    if phase == "pretrain":
        _check_kind_settings(cfg, _parse_sets(args.set, phase))
        from ..train.pretrain_data import tree_categories

        n = tree_categories(cfg.data, over.get("categories"), cfg.categories)
        if n != cfg.categories:
            cfg = cfg.replace(categories=n)
    return cfg


def check_output(cfg, out: str, *, resume: bool, force: bool) -> None:
    """Apply the run folder's output policy before any data is prepared, so a refused ``--out``
    costs no search, render or download, and writes nothing.

    The checks of ``engine.train``'s own ``prepare_output`` (another kind's output there, the
    run's input, a run there without ``resume`` or ``force``), and a folder whose lock another
    process holds, are refused here; nothing is created, so a data error found later leaves the
    file system as it was. ``engine.train`` takes the lock when it starts writing and checks
    again. Only the first process of a ``torchrun`` job (``RANK`` 0, or no ``RANK``) checks: the
    others write nothing.

    Raises:
        ParamError: naming ``out`` (or ``force`` for ``resume`` with ``force``).
    """
    import os

    from ..files import prepare_output
    from ..train.runfolder import run_inputs

    if os.environ.get("RANK", "0") not in ("", "0"):
        return
    prepare_output(out, owned="run", resume=resume, force=force, inputs=run_inputs(cfg), check_only=True)
    _check_unlocked(out)


def _check_unlocked(out: str) -> None:
    """Refuse ``out`` while another process holds its lock (``files.lock_output``), without
    creating anything: a folder with no lock file is held by no one."""
    import os

    from ..files import LOCK_FILE

    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locks
        return
    try:
        fd = os.open(os.path.join(out, LOCK_FILE), os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise ParamError(
            "out", f"{out} is being written by another process; wait for it or choose another --out"
        ) from None
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken


def _run(args, phase: str, keys: tuple[str, ...]) -> int:
    from ..train.engine import check_config, train

    cfg = _config(args, phase, keys)
    check_config(cfg)  # bad settings are refused before the output is looked at
    check_output(cfg, args.out, resume=args.resume, force=args.force)
    summary = train(cfg, args.out, resume=args.resume, force=args.force, progress=not args.no_progress)
    top = summary.get("top1_last")
    best = summary.get("top1_best")
    msg = f"{phase}: {summary['steps']} steps in {summary['wall_seconds']:.1f} s"
    if top is not None:
        msg += f"; top-1 last {top:.2f} %, best {best:.2f} %"
    print(msg + f"; weights {summary['weights_sha256'][:16]} -> {args.out}")
    return 0


def cmd_pretrain(args) -> int:
    return _run(args, "pretrain", ("data", "categories", "augment", "params", "pipeline"))


def cmd_finetune(args) -> int:
    return _run(args, "finetune", ("dataset", "init", "data_root", "download", "train_per_class"))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pre-train a ViT on OFDB / FractalDB / 1p-frac / 3D views / an ImageFolder tree"
    )
    p.add_argument(
        "--data",
        default="ofdb",
        help="ofdb | fractaldb | 1pfrac | PATH (ImageFolder) | multiview:PATH (3D views)",
    )
    p.add_argument(
        "--categories",
        type=int,
        help="number of categories (default: the profile's; an ImageFolder tree has one per class "
        "folder, and a 3D-view tree at most its folders)",
    )
    p.add_argument(
        "--augment",
        help="default | fluctuation | rotation | pattern | texture | both (multiview: default | pattern)",
    )
    p.add_argument("--params", help="folder of NNNNN.csv categories (default: the exact search, cached)")
    p.add_argument(
        "--pipeline",
        help="loader | batched | auto (default auto: batches made on the GPU with CUDA, loader workers elsewhere)",
    )
    _common(p)
    p.set_defaults(func=cmd_pretrain)

    f = subparsers.add_parser(
        "finetune", help="fine-tune a pre-trained (or scratch) ViT on a downstream task"
    )
    f.add_argument("--dataset", help="fashion-mnist | cifar10 | cifar100 | imagefolder:PATH")
    f.add_argument(
        "--init",
        required=True,
        help="a pre-training run folder or its checkpoint.pt, an export folder (export --out), or scratch",
    )
    f.add_argument("--data-root", help="folder holding the dataset files")
    f.add_argument("--download", action="store_true", default=None, help="let torchvision download")
    f.add_argument("--train-per-class", type=int, help="keep K training images per class")
    _common(f)
    f.set_defaults(func=cmd_finetune)
