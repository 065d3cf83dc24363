"""A profile's recipe, value by value with its source: ``profile show`` and the book's recipe page.

``table(profile, phase)`` lists each setting with our value, the public recipe's value and the
source (``config.Profile.recipe``); ``resolved_table`` adds the values derived at a world size
(global batch, the learning rates scaled by ``global_batch / 512``). ``show_text`` prints both
phases for the command line; ``page_markdown`` renders every profile as the book's recipe page.
Nothing here types a number: every figure comes from ``config``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import check_positive_int
from ..files import atomic_write_text
from .profiles import PROFILES, get_profile
from .schema import LR_REFERENCE_BATCH, PHASES, TrainConfig, resolve
from .sources import DISAGREEMENTS, MAIN_PY, NO_PUBLIC, REPOSITORIES, resolve_public

COLUMNS = ("setting", "ours", "public", "source")
PHASE_TITLES = {"pretrain": "pre-training", "finetune": "fine-tuning"}
#: Profiles in the order the page shows them: the public recipes first.
PAGE_ORDER = ("paper", "paper-short", "paper-21k", "mini", "smoke", "smoke-readout")


def fmt(value) -> str:
    """A value as the tables show it: floats to 6 significant digits, ints with thousands commas."""
    if value is NO_PUBLIC:
        return "-"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return str(value)


def table(profile: str, phase: str) -> list[tuple[str, str, str, str]]:
    """(setting, ours, public, source) for every ``TrainConfig`` field of one phase, in field order."""
    recipe = get_profile(profile).recipe(phase)
    out = []
    for f in dataclasses.fields(TrainConfig):
        cite = recipe.cites[f.name]
        out.append((f.name, fmt(getattr(recipe.cfg, f.name)), fmt(cite.public), cite.source))
    return out


def resolved_table(profile: str, phase: str, world_size: int = 1) -> list[tuple[str, str, str, str]]:
    """The values derived at ``world_size`` processes: global batch and the three scaled rates.

    The public column holds the same quantities for the public recipe (its batch and base rates,
    on the recipe's own global batch).
    """
    world_size = check_positive_int("world_size", world_size)
    recipe = get_profile(profile).recipe(phase)
    cfg = recipe.cfg
    keys = ("batch_size", "base_lr", "base_warmup_lr", "base_min_lr")
    public_values = {k: recipe.cites[k].public for k in keys}
    ours = resolve(cfg, world_size)
    public = None
    if not any(v is NO_PUBLIC for v in public_values.values()):
        public = resolve(cfg.replace(**public_values), 1)
    batch_note = f"batch_size {cfg.batch_size:,} per process x world size {world_size}"
    if world_size > 1 and cfg.batch_size % world_size == 0:
        batch_note += f" (the profile's global batch on {world_size} processes: --batch-size {cfg.batch_size // world_size})"
    scale = f"x global batch / {LR_REFERENCE_BATCH} ({MAIN_PY}; DeiT's linear rule)"

    def pub(attr: str) -> str:
        return fmt(getattr(public, attr)) if public is not None else "-"

    return [
        ("world size", fmt(world_size), "-", "processes (torchrun --nproc-per-node)"),
        ("global batch", fmt(ours.global_batch), pub("global_batch"), batch_note),
        ("lr", fmt(ours.lr), pub("lr"), f"base_lr {fmt(cfg.base_lr)} {scale}"),
        (
            "warmup lr",
            fmt(ours.warmup_lr),
            pub("warmup_lr"),
            f"base_warmup_lr {fmt(cfg.base_warmup_lr)} {scale}",
        ),
        ("min lr", fmt(ours.min_lr), pub("min_lr"), f"base_min_lr {fmt(cfg.base_min_lr)} {scale}"),
    ]


def kind_table(profile: str) -> list[tuple[str, str, str, str]]:
    """Pre-training settings of data kinds with their own values at the profile (``kind.setting``)."""
    prof = get_profile(profile)
    out = []
    for kind, items in prof.data_kinds.items():
        for key, (value, cite) in items.items():
            public = resolve_public(cite, value, None).public
            out.append((f"{kind}: {key}", fmt(value), fmt(public), cite.source))
    return out


def _text_table(rows: list[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        cells = [r[i].ljust(widths[i]) for i in range(len(header) - 1)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return lines


def show_text(profile: str, world_size: int = 1) -> str:
    """Both phases of a profile, every value with its source, then the values at ``world_size``."""
    prof = get_profile(profile)
    lines = [f"profile {prof.name}"]
    for phase in PHASES:
        lines += ["", f"== {PHASE_TITLES[phase]}"]
        lines += _text_table(table(profile, phase))
        lines += ["", f"-- {PHASE_TITLES[phase]} at world size {world_size}"]
        lines += _text_table(resolved_table(profile, phase, world_size))
    kinds = kind_table(profile)
    if kinds:
        lines += ["", "== data kinds with settings of their own (pre-training)"]
        lines += _text_table(kinds)
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(rows: list[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> list[str]:
    head = "| " + " | ".join(header) + " |"
    rule = "|" + "---|" * len(header)
    body = ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return [head, rule, *body]


def page_markdown(profiles=PAGE_ORDER) -> str:
    """The book's recipe page: every profile, both phases, every value with its source."""
    repos = ", ".join(f"[{name}]({url})" for name, url in REPOSITORIES.items())
    lines = [
        "# The recipe, value by value",
        "",
        "Every setting of every profile (`ofdb_study/config/profiles.py`), with our value, the public recipe's "
        "value for the same setting (`-` where the public code has none) and where it comes from. "
        "This page is generated from the code by the study runner; "
        "`python -m ofdb_study profile show NAME [--world-size W]` prints the same on the command line. "
        f"Learning rates are written per global batch of {LR_REFERENCE_BATCH} and scaled by "
        f"`global_batch / {LR_REFERENCE_BATCH}`; the resolved tables give them at one process. "
        f"The public sources: {repos}.",
    ]
    lines += [
        "",
        "## Where the public sources disagree",
        "",
        "Where two public sources give different values for one setting, or a value had to be inferred, "
        "this is what each says and what the profiles do (`config.sources.DISAGREEMENTS`).",
        "",
    ]
    lines += _md_table(list(DISAGREEMENTS), ("topic", "the public sources", "the profiles"))
    for name in profiles:
        prof = PROFILES[name]
        lines += ["", f"## `{prof.name}`"]
        for phase in PHASES:
            lines += ["", f"### {prof.name}: {PHASE_TITLES[phase]}", ""]
            lines += _md_table(table(name, phase))
            lines += ["", "At one process:", ""]
            lines += _md_table(resolved_table(name, phase, 1))
        kinds = kind_table(name)
        if kinds:
            lines += ["", f"### {prof.name}: data kinds with settings of their own", ""]
            lines += _md_table(kinds)
    return "\n".join(lines) + "\n"


def write_page(path: str | os.PathLike) -> Path:
    """Write ``page_markdown()`` to ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, page_markdown())
