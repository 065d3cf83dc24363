"""What a finished run folder says about itself: its profile, what differs from it, its data, a tag.

Read by the weight export (the model card, the timm tag) and by the results pack (which runs
belong to a profile). Only the small files are read (config.yaml, manifest.json, summary.json,
metrics.jsonl); nothing here imports torch.

The profile of a run is the ``profile`` entry of its config.yaml (written since configs carry
their profile, see ``config.Profile``). For older run folders without it, the profile is the one
whose phase config differs from the run's only in the settings a study varies per run
(``PER_RUN``) or in operational ones; a run that fits none has no profile.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import OPERATIONAL, PROFILES, TrainConfig, data_kind
from ..errors import ParamError

#: The files of a run folder (``train.runfolder`` writes them): settings, provenance, the metrics
#: log, the weights and optimizer state, and the summary, whose presence marks a finished run.
CONFIG, MANIFEST, METRICS, CHECKPOINT, SUMMARY = (
    "config.yaml",
    "manifest.json",
    "metrics.jsonl",
    "checkpoint.pt",
    "summary.json",
)
#: The files of a run folder that describe it (everything but the weights).
SMALL_FILES = (CONFIG, MANIFEST, METRICS, SUMMARY)
#: Settings the study and the command line choose per run, on top of a profile.
PER_RUN = frozenset({"data", "categories", "augment", "params", "dataset", "init", "seed", "train_per_class"})


@dataclass(frozen=True)
class RunInfo:
    """One run folder's small files, parsed.

    Attributes:
        path: the run folder.
        config: its TrainConfig (config.yaml).
        manifest: manifest.json (provenance: versions, device, dataset hash), {} if absent.
        summary: summary.json, None while the run is unfinished.
    """

    path: Path
    config: TrainConfig
    manifest: dict
    summary: dict | None

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def name(self) -> str:
        return self.path.name


def read_run(run: str | Path) -> RunInfo:
    """Parse a run folder; ParamError if it has no config.yaml."""
    run = Path(run)
    cfg_path = run / CONFIG
    if not cfg_path.is_file():
        raise ParamError("run", f"{run} is not a run folder (no config.yaml)")
    config = read_config(cfg_path)
    manifest = _read_json(run / MANIFEST) if (run / MANIFEST).is_file() else {}
    summary = _read_json(run / SUMMARY) if (run / SUMMARY).is_file() else None
    return RunInfo(run, config, manifest, summary)


def read_config(path: Path, text: str | None = None, param: str = "run") -> TrainConfig:
    """The ``TrainConfig`` of a config.yaml (YAML's safe loader: no Python tags), or of ``text``;
    ParamError naming ``param`` and the file when it does not parse or holds no config."""
    try:
        doc = yaml.safe_load(path.read_text() if text is None else text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParamError(param, f"{path} is not a readable config ({why})") from None
    if not isinstance(doc, dict):
        raise ParamError(param, f"{path} holds no config (empty or not a mapping)")
    try:
        return TrainConfig.from_dict(doc)
    except ParamError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ParamError(param, f"{path} is not a valid config ({exc})") from None


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise ParamError("run", f"{path} is not valid JSON (corrupt)") from None
    if not isinstance(doc, dict):
        raise ParamError("run", f"{path} is not a JSON object (corrupt)")
    return doc


def read_metrics(run: str | Path) -> list[dict]:
    """The records of a run's metrics.jsonl (one per logged step, in order); [] if it has none."""
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    records = []
    for i, ln in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except ValueError:
            raise ParamError("run", f"{path} line {i} is not valid JSON (corrupt)") from None
        if not isinstance(rec, dict) or "step" not in rec:
            raise ParamError("run", f"{path} line {i} is not a metrics record")
        records.append(rec)
    return records


def _differences(cfg: TrainConfig, base: TrainConfig, ignore: frozenset) -> dict[str, tuple]:
    ours, theirs = cfg.to_dict(), base.to_dict()
    return {k: (theirs[k], v) for k, v in ours.items() if k not in ignore and theirs.get(k) != v}


def profile_of(cfg: TrainConfig) -> tuple[str | None, bool]:
    """``(profile name or None, recorded)``: recorded in the config, else inferred (see module doc)."""
    if cfg.profile is not None:
        return cfg.profile, True
    ignore = OPERATIONAL | PER_RUN | {"phase"}
    fits = [
        name for name, prof in PROFILES.items() if not _differences(cfg, getattr(prof, cfg.phase), ignore)
    ]
    return (fits[0], False) if len(fits) == 1 else (None, False)


def changes_from_profile(cfg: TrainConfig) -> tuple[str | None, dict[str, tuple]]:
    """``(profile, {setting: (profile's value, run's value)})`` for every value the run changed.

    Operational settings (workers, threads, logging) are left out. A run without a profile is
    compared with ``TrainConfig()``'s defaults (``profile`` is then None).
    """
    name, _ = profile_of(cfg)
    base = getattr(PROFILES[name], cfg.phase) if name in PROFILES else TrainConfig(phase=cfg.phase)
    return name, _differences(cfg, base, OPERATIONAL)


#: The name an export's tag gives each pre-training data kind (``config.data_kind``).
KIND_TAG_NAMES = {
    "ofdb": "ofdb2d",
    "fractaldb": "fractaldb",
    "1pfrac": "1pfrac",
    "multiview": "ofdb3d",
    "folder": "imagefolder",
}


def count_tag(n: int) -> str:
    """1000 -> ``1k``, 21000 -> ``21k``, 100 -> ``100``."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def pretrain_tag(cfg: TrainConfig) -> str:
    """``ofdb2d_1k``, ``fractaldb_100``, ``1pfrac_1k``, ``ofdb2d_1k_pattern`` (the kind's
    ``KIND_TAG_NAMES`` entry and the category count; augmentation named unless default)."""
    tag = f"{KIND_TAG_NAMES[data_kind(cfg.data)]}_{count_tag(cfg.categories)}"
    return tag if cfg.augment == "default" else f"{tag}_{_slug(cfg.augment)}"


def init_run(info: RunInfo) -> RunInfo | None:
    """The pre-training run a fine-tuning run started from, if its folder is still readable."""
    init = info.config.init
    if info.config.phase != "finetune" or init in (None, "", "scratch"):
        return None
    path = Path(init)
    folder = path if path.is_dir() else path.parent
    candidates = [folder, info.path.parent.parent / "pretrain" / folder.name]
    for cand in candidates:
        if (cand / CONFIG).is_file():
            return read_run(cand)
    return None


def export_tag(info: RunInfo) -> str:
    """timm's pretrained tag for a run: ``ofdb2d_1k`` (pre-training), ``ofdb2d_1k_ft_cifar100``.

    A fine-tuning run started from an export folder takes that export's tag; one whose start
    cannot be read is tagged ``pretrained_ft_<dataset>``; one from scratch ``scratch_ft_<dataset>``.
    """
    cfg = info.config
    if cfg.phase == "pretrain":
        return pretrain_tag(cfg)
    dataset = _slug(cfg.dataset.split(":", 1)[0])
    if cfg.init in (None, "", "scratch"):
        return f"scratch_ft_{dataset}"
    parent = init_run(info)
    base = pretrain_tag(parent.config) if parent else _exported_tag(Path(cfg.init)) or "pretrained"
    return f"{base}_ft_{dataset}"


def _exported_tag(init: Path) -> str | None:
    """The tag in an export folder's config.json (``export``), if ``init`` is one or its weights."""
    path = (init if init.is_dir() else init.parent) / "config.json"
    try:
        return json.loads(path.read_text())["pretrained_cfg"]["tag"] or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def downstream_runs(info: RunInfo) -> list[RunInfo]:
    """Finished fine-tuning runs that started from this pre-training run (same run root)."""
    folder = info.path.parent.parent / "finetune"
    if info.config.phase != "pretrain" or not folder.is_dir():
        return []
    out = []
    for run in sorted(p for p in folder.iterdir() if (p / SUMMARY).is_file()):
        try:
            other = read_run(run)
        except (ParamError, ValueError, yaml.YAMLError):
            continue
        init = Path(other.config.init or "scratch")
        if (init.parent if init.suffix in (".pt", ".safetensors") else init).name == info.name:
            out.append(other)
    return out
