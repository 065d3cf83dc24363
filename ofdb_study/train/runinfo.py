"""What a finished run folder says about itself: its profile, what differs from it, its data, a tag.

Read by the weight export (the model card, the timm tag) and by the results pack (which runs
belong to a profile). Only the small files are read (config.yaml, manifest.json, summary.json,
metrics.jsonl); nothing here imports torch.

``verify_run(path, expected_cfg)`` is the one check a reader makes before trusting a finished run:
its config against its folder's key and phase (and the planned config), its metrics and summary
parsed with their numbers in range, and (given the data's sha256) the fine-tuning data it was made
on. ``train.runfolder.run_finished`` adds the data's sha256 as loaded now; ``study.plan.RunSpec``,
``analysis.runs``, ``study --no-train`` and ``results pack|unpack`` call them.

The profile of a run is the ``profile`` entry of its config.yaml (written since configs carry
their profile, see ``config.Profile``). For older run folders without it, the profile is the one
whose phase config differs from the run's only in the settings a study varies per run
(``PER_RUN``) or in operational ones; a run that fits none has no profile.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import OPERATIONAL, PROFILES, TrainConfig, data_kind
from ..errors import ParamError
from ..fractals.kinds import KINDS

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
    """Parse a run folder; ParamError if it has no config.yaml, or a file that does not parse, or
    a summary whose numbers are not finite and in range (``check_summary``). ``verify_run`` checks
    more (the folder's key and phase, the metrics, the planned config)."""
    run = Path(run)
    cfg_path = run / CONFIG
    if not cfg_path.is_file():
        raise ParamError("run", f"{run} is not a run folder (no config.yaml)")
    config = read_config(cfg_path)
    manifest = _read_json(run / MANIFEST) if (run / MANIFEST).is_file() else {}
    summary = _read_json(run / SUMMARY) if (run / SUMMARY).is_file() else None
    if summary is not None:
        check_summary(summary, str(run / SUMMARY), config)
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
    except (ValueError, UnicodeDecodeError, RecursionError):
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
        except (ValueError, RecursionError):
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
    # profiles that share one recipe (smoke-readout runs smoke's) are one fit: the first to define it
    recipes = {getattr(PROFILES[name], cfg.phase).digest() for name in fits}
    return (fits[0], False) if len(recipes) == 1 else (None, False)


def changes_from_profile(cfg: TrainConfig) -> tuple[str | None, dict[str, tuple]]:
    """``(profile, {setting: (profile's value, run's value)})`` for every value the run changed.

    Operational settings (workers, threads, logging) are left out. A run without a profile is
    compared with ``TrainConfig()``'s defaults (``profile`` is then None).
    """
    name, _ = profile_of(cfg)
    base = getattr(PROFILES[name], cfg.phase) if name in PROFILES else TrainConfig(phase=cfg.phase)
    return name, _differences(cfg, base, OPERATIONAL)


#: The name an export's tag gives each pre-training data kind (``config.data_kind``; ``Kind.tag``).
KIND_TAG_NAMES = {k.name: k.tag for k in KINDS.values()}


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


# ---- verification on read -----------------------------------------------------------------------
#: Hex digits of a config digest in a keyed run folder's name (``<settings>-<digest[:10]>``,
#: ``study.plan``).
KEY_LENGTH = 10
_KEYED = re.compile(rf"-([0-9a-f]{{{KEY_LENGTH}}})$")
#: Summary entries that are percentages (top-1), in [0, 100].
_PERCENT = ("top1_last", "top1_best")


def run_key(name: str) -> str | None:
    """The config-digest prefix a keyed run folder's name ends with (``-<10 hex digits>``), or None."""
    m = _KEYED.search(name)
    return m.group(1) if m else None


def _digests(cfg: TrainConfig) -> set[str]:
    """The digests a run of ``cfg`` may be keyed by: its own, and for a pre-training recorded as
    ``batched`` also the ``auto`` config the study planned it under (``TrainConfig.ran_with``)."""
    found = {cfg.digest()}
    if cfg.phase == "pretrain" and cfg.pipeline == "batched":
        found.add(cfg.replace(pipeline="auto").digest())
    return found


def _number_error(key: str, value) -> str | None:
    """Why a summary or metrics value is out of range, or None when it is fine."""
    if value is None or isinstance(value, (bool, str, list, dict)):
        return None
    if not isinstance(value, (int, float)):
        return f"{key} is not a number ({value!r})"
    if not math.isfinite(value):
        return f"{key} is not finite ({value!r})"
    if value < 0:
        return f"{key} is negative ({value!r})"
    if key in _PERCENT or key == "top1":
        if value > 100:
            return f"{key} is above 100 % ({value!r})"
    return None


def check_summary(doc, where: str, cfg: TrainConfig | None = None, param: str = "run") -> dict:
    """``doc`` (a parsed summary.json) if it is a JSON object whose numbers are finite and in
    range: top-1 values in [0, 100], losses, steps, seconds, rates and counts >= 0, and (given the
    run's ``cfg``) its phase and step count those of the config. ParamError naming ``where``
    otherwise."""
    if not isinstance(doc, dict):
        raise ParamError(param, f"{where} is not a JSON object (corrupt)")
    for key, value in doc.items():
        why = _number_error(key, value)
        if why:
            raise ParamError(param, f"{where}: {why}; the run's results are not usable")
    if cfg is not None:
        if doc.get("phase", cfg.phase) != cfg.phase:
            raise ParamError(param, f"{where} is a {doc['phase']} summary beside a {cfg.phase} config")
        if "steps" in doc and doc["steps"] != cfg.steps:
            raise ParamError(param, f"{where} says {doc['steps']} steps, its config.yaml {cfg.steps}")
    return doc


def check_numbers(doc, where: str, param: str = "run") -> dict:
    """``doc`` (a parsed JSON object: a baseline, a probe) if every number in it is finite and in
    range (>= 0; top-1 values at most 100); ParamError naming ``where`` otherwise."""
    if not isinstance(doc, dict):
        raise ParamError(param, f"{where} is not a JSON object (corrupt)")
    for key, value in doc.items():
        why = _number_error(key, value)
        if why is None and ("top1" in key or key in ("softmax", "1-nn")) and isinstance(value, (int, float)):
            why = f"{key} is above 100 % ({value!r})" if value > 100 else None
        if why:
            raise ParamError(param, f"{where}: {why}")
    return doc


def _parse_json(data: bytes, where: str, param: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParamError(param, f"{where} is not valid JSON (truncated or corrupt)") from None


def _check_metrics(data: bytes, where: str, param: str) -> None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ParamError(param, f"{where} is not text (corrupt)") from None
    last = -1
    for i, ln in enumerate(text.splitlines(), 1):
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except (ValueError, RecursionError):
            raise ParamError(param, f"{where} line {i} is not valid JSON (truncated or corrupt)") from None
        if not isinstance(rec, dict) or type(rec.get("step")) is not int or rec["step"] < last:
            raise ParamError(param, f"{where} line {i} is not a metrics record in step order")
        last = rec["step"]
        for key in ("step", "loss", "lr", "top1"):
            why = _number_error(key, rec.get(key))
            if why:
                raise ParamError(param, f"{where} line {i}: {why}")


def verify_run(
    path: str | Path,
    expected_cfg: TrainConfig | None = None,
    *,
    data_sha256: str | None = None,
    data_param: str = "data_root",
    data_where: str | None = None,
    files: Mapping[str, bytes] | None = None,
    param: str = "run",
) -> dict:
    """Check that a finished run folder is the run its name, its folder and its files say, and
    return its summary. Call it before reading a run's results.

    Checks, in order (the first failure raises):

    * ``config.yaml`` is there and parses into a ``TrainConfig``;
    * a run filed under a ``pretrain/`` or ``finetune/`` folder has that phase;
    * a keyed name (``<settings>-<10 hex digits>``, as ``study.plan`` names runs) holds the first
      digits of the config's digest (``TrainConfig.digest``; a pre-training recorded as
      ``batched`` may carry the key of the ``auto`` config it was planned as);
    * with ``expected_cfg``, the config has its digest (the run is the one planned);
    * ``metrics.jsonl`` is there, each line a record in step order with finite values;
    * ``summary.json`` is there, is a JSON object, its numbers are finite and in range (top-1 in
      [0, 100]; losses, steps, seconds, counts >= 0) and its phase and step count are the config's;
    * ``manifest.json``, where there, is a JSON object; with ``data_sha256`` it records that
      ``dataset_sha256`` (the fine-tuning data the run was made on is the data there now).

    Args:
        path: the run folder (for ``files``: the name it has or will have, e.g.
            ``runs/finetune/<name>``, which its phase and key are read from).
        expected_cfg: the config the caller planned for this folder (None: any config).
        data_sha256: the sha256 of the fine-tuning data as loaded now (``train.downstream``);
            None: the data is not compared.
        data_param: the parameter a data mismatch names (``data_root``; the study's
            ``downstream_root``), also named as its flag in the message.
        files: the run's small files as bytes by name (an archive's members) instead of the
            folder's files.
        param: the parameter every other failure names.

    Returns:
        The parsed ``summary.json``.

    Raises:
        ParamError: one line naming the file and what is wrong with it.
    """
    path = Path(path)

    def read(name: str) -> bytes | None:
        if files is not None:
            return files.get(name)
        target = path / name
        try:
            return target.read_bytes() if target.is_file() else None
        except OSError as exc:
            raise ParamError(param, f"{target} cannot be read ({exc.strerror or exc})") from None

    text = read(CONFIG)
    if text is None:
        raise ParamError(param, f"{path} is not a run folder (no {CONFIG})")
    cfg = read_config(path / CONFIG, text.decode("utf-8", errors="replace"), param=param)
    folder = path.parent.name
    if folder in ("pretrain", "finetune") and folder != cfg.phase:
        raise ParamError(param, f"{path} holds a {cfg.phase} run's {CONFIG}, filed under {folder}/")
    digests = _digests(cfg)
    key = run_key(path.name)
    if key is not None and key not in {d[:KEY_LENGTH] for d in digests}:
        raise ParamError(
            param,
            f"{path / CONFIG} digests to {cfg.digest()[:KEY_LENGTH]}, not to the key {key} in the "
            "folder's name (edited or renamed)",
        )
    if expected_cfg is not None and not digests & _digests(expected_cfg):
        new, was = expected_cfg.result_dict(), cfg.result_dict()
        diff = sorted(k for k in new.keys() | was.keys() if new.get(k) != was.get(k))
        raise ParamError(
            param, f"{path} holds another run than planned (its {CONFIG} differs in {', '.join(diff)})"
        )
    metrics = read(METRICS)
    if metrics is None:
        raise ParamError(param, f"{path / METRICS} is missing; the run is incomplete")
    _check_metrics(metrics, str(path / METRICS), param)
    raw = read(SUMMARY)
    if raw is None:
        raise ParamError(param, f"{path} has not finished (no {SUMMARY})")
    summary = check_summary(_parse_json(raw, str(path / SUMMARY), param), str(path / SUMMARY), cfg, param)
    manifest = read(MANIFEST)
    doc = {} if manifest is None else _parse_json(manifest, str(path / MANIFEST), param)
    if not isinstance(doc, dict):
        raise ParamError(param, f"{path / MANIFEST} is not a JSON object (corrupt)")
    if data_sha256 is not None:
        recorded = doc.get("dataset_sha256")
        if recorded != data_sha256:
            flag = "--" + data_param.replace("_", "-")
            said = f"{str(recorded)[:16]}" if recorded else "nothing"
            raise ParamError(
                data_param,
                f"{path} was fine-tuned on other data than {data_where or flag} holds now (dataset_sha256 "
                f"{said} recorded, {data_sha256[:16]} now); point {flag} at the data it was made on, "
                "or move the run away to retrain it",
            )
    return summary


_DATA_SHA256: dict[tuple, str | None] = {}


def finetune_data_sha256(cfg: TrainConfig, *, data_param: str = "data_root") -> str | None:
    """The ``dataset_sha256`` a fine-tuning of ``cfg`` would record now (``downstream.load_downstream``:
    the data files and the test draw), computed once per process and data set; None for a
    pre-training, and where the data set is in no usual place and ``cfg`` names no ``data_root``
    (nothing to compare with: a machine that reads unpacked results without the data). Loading
    the data imports torch (``train.downstream``), only for a finished fine-tuning.

    Raises:
        ParamError: ``cfg.data_root`` is given and does not hold the data set.
    """
    if cfg.phase != "finetune":
        return None
    key = (cfg.dataset, cfg.data_root, cfg.test_per_class)
    if key not in _DATA_SHA256:
        from .downstream import load_downstream

        try:
            *_, digest = load_downstream(
                cfg.dataset, data_root=cfg.data_root, download=False, test_per_class=cfg.test_per_class
            )
        except ParamError as exc:
            if cfg.data_root:
                raise ParamError(data_param, exc.message) from None
            digest = None
        _DATA_SHA256[key] = digest
    return _DATA_SHA256[key]


def run_finished(path: str | Path, cfg: TrainConfig, *, data_param: str = "data_root") -> bool:
    """Whether the planned run ``cfg`` has finished in ``path``: False while it has no
    ``summary.json``; True once it has one and ``verify_run`` finds it is that run (its config,
    its name's key, its files and numbers) made on the fine-tuning data there now
    (``finetune_data_sha256``).

    Raises:
        ParamError: the folder holds a finished run that is not ``cfg``'s, or not made on the data
            there now (naming ``data_param`` and both hashes), or a damaged one.
    """
    path = Path(path)
    if not (path / SUMMARY).is_file():
        return False
    digest = finetune_data_sha256(cfg, data_param=data_param)
    flag = "--" + data_param.replace("_", "-")
    where = f"{flag} {cfg.data_root}" if cfg.data_root else f"{cfg.dataset}'s usual place"
    verify_run(path, cfg, data_sha256=digest, data_param=data_param, data_where=where)
    return True
