"""The model card (README.md) of an exported run, written from its run folder alone.

Sections: how to load it, the data (kind, categories, seed, dataset hash), the recipe (profile and
every value changed from it), training (steps, images seen, hardware, wall time, versions), results
(own task; downstream runs that started from it, where they exist) and the paper and licence.
"""

from __future__ import annotations

from ..config import data_kind
from ..config.citation import BIBTEX, PACKAGE_LICENSE, paper_line
from ..fractals.kinds import KINDS, kind_of
from .runinfo import (
    RunInfo,
    changes_from_profile,
    downstream_runs,
    init_run,
    pretrain_tag,
    read_metrics,
)


def _category_source(cfg) -> str:
    """Where a pre-training run's categories come from (``Kind.categories`` of its data kind)."""
    kind = kind_of(cfg.data)
    if kind.searched:
        return f"`{cfg.params}`" if cfg.params else "the exact FractalDB search (seed 1)"
    return kind.categories.format(cfg=cfg)


def pretrain_kind(info: RunInfo) -> str | None:
    """The pre-training data kind behind a run: its own, or that of the run a fine-tuning run
    started from (None from scratch or where that run cannot be read)."""
    if info.config.phase == "pretrain":
        return data_kind(info.config.data)
    parent = init_run(info)
    return data_kind(parent.config.data) if parent else None


def card_tags(info: RunInfo) -> list[str]:
    """The tags of a run's card: the task and library, and those of its pre-training kind."""
    kind = pretrain_kind(info)
    return ["image-classification", "timm", *(KINDS[kind].card_tags if kind else ())]


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f} %"


def _hours(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds / 3600:.2f} h)"


def _table(rows: list[tuple]) -> list[str]:
    head, *body = rows
    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in body]


def _last_loss(info: RunInfo) -> float | None:
    records = read_metrics(info.path)
    return records[-1].get("loss") if records else None


def _data_section(info: RunInfo) -> list[str]:
    cfg, man = info.config, info.manifest
    rows = [("setting", "value")]
    if cfg.phase == "pretrain":
        rows += [
            ("data", f"{kind_of(cfg.data).about}: `{cfg.data}`"),
            ("categories", f"{cfg.categories:,} (tag `{pretrain_tag(cfg)}`)"),
            ("instance augmentation", cfg.augment),
            ("category parameters", _category_source(cfg)),
        ]
    else:
        parent = init_run(info)
        start = "scratch (random initialisation)"
        if cfg.init not in (None, "", "scratch"):
            start = f"`{cfg.init}`" + (
                f" ({parent.config.data}, {parent.config.categories:,} categories)" if parent else ""
            )
        rows += [
            ("downstream dataset", cfg.dataset),
            ("training images per class", cfg.train_per_class or "all"),
            ("test images per class", cfg.test_per_class or "all"),
            ("initialised from", start),
        ]
    rows += [
        ("seed", cfg.seed),
        ("dataset sha256", f"`{man.get('dataset_sha256', 'not recorded')}`"),
        ("classes (head outputs)", info.summary["num_classes"]),
    ]
    return ["## Data", "", *_table(rows)]


def _recipe_section(info: RunInfo) -> list[str]:
    profile, changes = changes_from_profile(info.config)
    cfg = info.config
    lines = ["## Recipe", ""]
    arch = (
        f"`{cfg.model}` at {cfg.img_size} px, patch {cfg.patch_size}"
        + "".join(f", {k} {getattr(cfg, k)}" for k in ("depth", "embed_dim", "num_heads") if getattr(cfg, k))
        + (f", pooling `{cfg.global_pool}`" if cfg.global_pool else "")
    )
    lines += [f"Model: {arch} (config.json's `model_args` rebuild exactly this shape).", ""]
    if profile is None:
        lines.append(
            "No profile: a custom configuration. Values that differ from `TrainConfig()`'s defaults:"
        )
    else:
        how = "recorded in config.yaml" if cfg.profile else "inferred from the settings"
        lines.append(f"Profile `{profile}` ({how}; `ofdb_study.config`), with these values changed:")
    lines.append("")
    if not changes:
        return lines + ["none."]
    rows = [("setting", "profile" if profile else "default", "this run")]
    rows += [(k, f"`{a}`", f"`{b}`") for k, (a, b) in sorted(changes.items())]
    return lines + _table(rows)


def _training_section(info: RunInfo) -> list[str]:
    s, man = info.summary, info.manifest
    versions = man.get("versions", {})
    device = s.get("device", man.get("device", "?"))
    name = man.get("device_name") or ""
    loss = _last_loss(info)
    rows = [
        ("setting", "value"),
        ("optimizer steps", f"{s['steps']:,}"),
        ("global batch", f"{s['global_batch']:,}"),
        ("images seen", f"{s['steps'] * s['global_batch']:,}"),
        ("peak learning rate", f"{s['lr']:.3g}"),
        ("final training loss", "-" if loss is None else f"{loss:.4f}"),
        ("hardware", f"{device}{f' ({name})' if name else ''} x {s.get('world_size', 1)} process(es)"),
        ("wall time", _hours(s["wall_seconds"])),
        ("throughput", f"{s.get('images_per_s', 0):,.0f} images/s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)),
        ("git commit", f"`{man.get('git_commit') or 'not recorded'}`"),
        ("weights sha256 (state dict)", f"`{s['weights_sha256']}`"),
    ]
    return ["## Training", "", *_table(rows)]


def _results_section(info: RunInfo) -> list[str]:
    s, cfg = info.summary, info.config
    task = "pre-training categories (own task)" if cfg.phase == "pretrain" else cfg.dataset
    lines = [
        "## Results",
        "",
        f"Top-1 on the {task}: last {_pct(s.get('top1_last'))}, best {_pct(s.get('top1_best'))}.",
    ]
    down = downstream_runs(info)
    if cfg.phase == "pretrain":
        lines.append("")
        if not down:
            lines.append("No fine-tuning run from this checkpoint was found beside it.")
        else:
            rows = [("fine-tuned on", "per class", "seed", "top-1 last", "top-1 best", "run")]
            rows += [
                (
                    d.config.dataset,
                    d.config.train_per_class or "all",
                    d.config.seed,
                    _pct(d.summary.get("top1_last")),
                    _pct(d.summary.get("top1_best")),
                    f"`{d.name}`",
                )
                for d in down
            ]
            lines += ["Fine-tuning runs that started from this run:", "", *_table(rows)]
    return lines


def model_card(info: RunInfo, name: str) -> str:
    """The README.md text for an export named ``name`` (``architecture.tag``)."""
    arch = info.config.model
    front = [
        "---",
        "library_name: timm",
        f"license: {PACKAGE_LICENSE.lower()}",
        "pipeline_tag: image-classification",
        f"tags: [{', '.join(card_tags(info))}]",
        "---",
        "",
        f"# {name}",
        "",
        f"A `{arch}` trained by ofdb-study (run `{info.name}`), which reproduces *{paper_line()}*",
        "",
        "## Use",
        "",
        "```python",
        "import timm",
        'model = timm.create_model("local-dir:THIS_FOLDER", pretrained=True)  # or "hf-hub:USER/REPO"',
        'new_head = timm.create_model("local-dir:THIS_FOLDER", pretrained=True, num_classes=100)',
        "```",
        "",
        "Preprocessing (`config.json`): the input size, mean, std, interpolation and crop of the run's"
        " evaluation transform (`timm.data.resolve_data_config({}, model=model)`).",
        "",
    ]
    licence = [
        "## Paper and licence",
        "",
        f"Cite the paper when you use these weights: {paper_line()}",
        "",
        "```bibtex",
        BIBTEX,
        "```",
        "",
        f"The weights are released under the {PACKAGE_LICENSE} licence of ofdb-study. They were trained on"
        " images that ofdb-study generates from the paper's formulas; see the package's DATA_LICENSE.md"
        " for the terms of the paper's own FractalDB/OFDB data.",
    ]
    body = _data_section(info) + [""] + _recipe_section(info) + [""] + _training_section(info)
    body += [""] + _results_section(info) + [""]
    return "\n".join(front + body + licence) + "\n"
