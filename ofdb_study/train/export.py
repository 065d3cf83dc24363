"""Export a finished run as a folder that timm loads with no code of ours.

``export_run(RUN, OUT)`` writes:

* ``model.safetensors``: the run's final weights, head included (the pre-training categories'
  classifier for a pre-training run, the downstream classifier for a fine-tuning run; timm drops it
  when a model is made with another ``num_classes``);
* ``config.json``: timm's hub configuration (``timm.models.save_for_hf``): ``architecture``,
  ``num_classes``, ``model_args`` (every shape argument the run changed: image size, patch, depth,
  width, heads, pooling, so timm rebuilds the same model) and ``pretrained_cfg`` with the input
  size, mean, std, interpolation and crop of the run's evaluation transform and the tag
  (``vit_tiny_patch16_224.ofdb2d_1k``: architecture, then ``runinfo.export_tag``);
* ``README.md``: the model card (``card.model_card``).

Load it with ``timm.create_model("local-dir:OUT", pretrained=True)``, or by name::

    cfg = json.load(open("OUT/config.json"))
    timm.create_model(cfg["architecture"], pretrained=True,
                      pretrained_cfg_overlay=dict(cfg["pretrained_cfg"], file="OUT/model.safetensors"),
                      **cfg["model_args"])

(timm refuses a tag it has not registered in the model name itself, so the tag travels in the
config.) Nothing is written unless the run is finished and its checkpoint holds the weights that
summary.json recorded. The export holds OUT's lock (``files.lock_output``) from its first check to
its last rename, so a second export to OUT at the same time is refused with one line; the files
are written to a folder beside OUT whose name carries the process id, then renamed into place,
and a failed export removes that folder and any folder it created.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from ..config.citation import PAPER_ARXIV, PAPER_TITLE
from ..errors import ParamError
from ..files import lock_output, missing_folders, prepare_output, release_output, remove_empty
from ..fractals.kinds import kind_of
from . import models
from .card import model_card
from .runinfo import CHECKPOINT, RunInfo, export_tag, read_run


def export_name(info: RunInfo) -> str:
    """``architecture.tag``, e.g. ``vit_tiny_patch16_224.ofdb2d_1k``."""
    return f"{info.config.model}.{export_tag(info)}"


def _prepare_out(out: Path, run: Path, force: bool, *, check_only: bool) -> None:
    """The package's output policy for an export (``files.prepare_output``): not the run, not in
    it, nothing of another output there; ``force`` replaces an earlier export's files only."""
    prepare_output(
        out,
        owned="export",
        force=force,
        resumable=False,
        inputs=[("run", run)],
        check_only=check_only,
        lock=not check_only,
    )


def trained_categories(info: RunInfo) -> RunInfo:
    """``info`` with the category count its classifier was trained on, for the tag and the card.

    A pre-training on a folder tree has as many categories as its classifier has outputs
    (``summary.json``'s ``num_classes``, the tree's folders). A run recorded with the profile's
    count instead (written before ``pretrain`` took the count from the tree) is told by that
    count; every other run is returned as it is.
    """
    cfg = info.config
    trained = (info.summary or {}).get("num_classes")
    if cfg.phase != "pretrain" or kind_of(cfg.data).in_memory:
        return info
    if not isinstance(trained, int) or trained < 1 or trained == cfg.categories:
        return info
    return dataclasses.replace(info, config=cfg.replace(categories=trained))


def staging_folder(out: Path) -> Path:
    """The folder beside ``out`` an export writes into before renaming its files into ``out``:
    hidden, and named by this process's id, so two processes never share one. Its name ends in no
    ``.tmp``: no other output's ``--force`` takes it for a temporary of its own."""
    return out.parent / f".{out.name}.export-{os.getpid()}"


def _remove_stale_staging(out: Path) -> None:
    """Remove the staging folders of exports to ``out`` that were killed: called with ``out``'s
    lock held, so no other export to ``out`` is running and every such folder is left over."""
    prefix = f".{out.name}.export-"
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith(prefix) and name[len(prefix) :].isdigit() and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _cannot_write(out: Path, exc: OSError) -> ParamError:
    why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or str(exc)
    return ParamError("out", f"{out} cannot be written ({why})")


def export_run(run: str | os.PathLike, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the export folder of a finished run (see the module doc).

    Args:
        run: a finished run folder (with summary.json and checkpoint.pt).
        out: the export folder; refused if it holds anything, unless ``force`` (then replaced).
        force: replace ``out``.

    Returns:
        ``out`` as a Path.

    Raises:
        ParamError: the run is unfinished or its checkpoint does not match its summary; ``out``
            is refused by the output policy or is being written by another process.
    """
    run, out = Path(run), Path(out)
    info = read_run(run)
    if not info.finished:
        raise ParamError("run", f"{run} is not finished (no summary.json); export a finished run")
    if not (run / CHECKPOINT).is_file():
        raise ParamError("run", f"{run} has no checkpoint.pt (unpacked results carry no weights)")
    info = trained_categories(info)
    _prepare_out(out, run, force, check_only=True)
    made = missing_folders(out)
    tmp = staging_folder(out)
    locked = False
    try:
        lock_output(out)  # held until the last rename: a second export to ``out`` is refused
        locked = True
        _prepare_out(out, run, force, check_only=True)  # what is there now that the lock is held
        _remove_stale_staging(out)
        _write(info, run, tmp, out)
        _prepare_out(out, run, force, check_only=False)
        for entry in sorted(tmp.iterdir()):
            os.replace(entry, out / entry.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if locked:  # a refused export leaves what the export holding ``out`` has made
            release_output(out)
            remove_empty(made)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    release_output(out)
    return out


def _write(info: RunInfo, run: Path, tmp: Path, out: Path) -> None:
    """Write the export's three files into the fresh folder ``tmp`` (``out`` is for messages)."""
    import timm.models
    import torch

    from .runfolder import weights_sha256

    model = models.create_model(info.config, int(info.summary["num_classes"]))
    model.load_state_dict(models.read_state_dict(run / CHECKPOINT))
    if weights_sha256(model) != info.summary["weights_sha256"]:
        raise ParamError("run", f"{run}/checkpoint.pt does not hold the final weights of summary.json")
    model.eval()
    cfg = info.config
    pretrained_cfg = {
        "tag": export_tag(info),
        "mean": tuple(cfg.mean),
        "std": tuple(cfg.std),
        "interpolation": cfg.interpolation,
        "crop_pct": 1.0,  # the evaluation transform resizes to img_size without a crop
        "crop_mode": "center",
        "license": "mit",
        "paper_name": PAPER_TITLE,
        "paper_ids": f"arXiv:{PAPER_ARXIV}",
        "description": f"ofdb-study run {info.name} ({cfg.phase}), seed {cfg.seed}",
    }
    try:
        tmp.mkdir()
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    with torch.no_grad():
        timm.models.save_for_hf(
            model, str(tmp), model_config={"pretrained_cfg": pretrained_cfg}, safe_serialization=True
        )
    (tmp / "README.md").write_text(model_card(info, export_name(info)))
