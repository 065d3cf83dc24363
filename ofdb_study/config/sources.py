"""Where every recipe value comes from: the paper, a public script and its setting, or our choice.

Each value of each profile in ``config.PROFILES`` carries a ``Cite``: the source in words and the
public recipe's value. ``config`` writes a value and its cite side by side (``value, pub(...)``);
``recipe`` prints them (``python -m ofdb_study profile show NAME``) and renders the book's recipe
page, so no number of the recipe is typed twice.

The public sources are named once here (script, then the setting inside it); ``REPOSITORIES``
gives where each script lives.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The public repositories the sources below name.
REPOSITORIES = {
    "OFDB": "https://github.com/ryoo-nakamura/OFDB",
    "CVPR2022-ViT": "https://github.com/masora1030/CVPR2022-Pretrained-ViT-PyTorch",
    "1p-frac": "https://github.com/SUPER-TADORY/1p-frac",
    "timm": "https://github.com/huggingface/pytorch-image-models",
}

OFDB_PAPER = "paper (Nakamura et al., ICCV 2023)"
ONEPFRAC_PAPER = "1p-frac paper (Nakamura et al., ECCV 2024)"
#: The OFDB pre-training command (ViT-Tiny, OFDB-1k); its README gives the same command.
PRETRAIN_SH = "OFDB pre-train.sh"
#: The OFDB fine-tuning command (CIFAR; its README gives the same command).
FINETUNE_SH = "OFDB finetuning.sh"
#: The hydra training script both shell scripts call; it scales every learning rate by
#: global batch / 512 (published with the OFDB code's configs in 1p-frac's train/main.py).
MAIN_PY = "OFDB main.py"
MODEL_YAML = "OFDB configs/model/vit.yaml"
GRAY_YAML = "OFDB configs/data/grayimagefolder.yaml"
COLOR_YAML = "OFDB configs/data/colorimagefolder.yaml"
README_21K = "OFDB README, released 21k checkpoints (..._lr5.0e-4_epochs15238_bs1024)"
GEN_2D = "OFDB 2d-ofdb-generator"
GEN_3D = "OFDB 3d-ofdb-generator"
#: ImageNet-1k fine-tuning of the 21k models (Table 3) follows the CVPR 2022 ViT repository.
IN1K_FINETUNE_SH = "CVPR2022-ViT scripts/finetune.sh"
IN1K_FINETUNE_PY = "CVPR2022-ViT finetune.py (defaults)"
IN1K_LOADER = "CVPR2022-ViT data/loader.py"
ONEPFRAC_GEN = "1p-frac render_from_oneparam_mp.py"
ONEPFRAC_SH = "1p-frac generate.sh"
TIMM_DEIT_B = "timm deit_base_patch16_224 (pretrained_cfg)"
TIMM_EVAL = "timm create_transform(is_training=False)"

#: Where the public sources disagree with each other, and what the profiles do about it: (topic,
#: what each source says, what we do). The recipe page lists them; an inference is called one.
DISAGREEMENTS = (
    (
        "pre-training batch above 1k categories",
        "OFDB README (its pre-training note): 'for datasets with more than 1k categories, we "
        "basically pre-trained with overall batch size of 256'; the released 21k checkpoints are named "
        f"bs1024, and {OFDB_PAPER}, Table 3 gives batch 1,024 for 2D/3D-OFDB-21k",
        "paper-21k pre-trains at a global batch of 1,024: the table of the paper and the names of the "
        "released 21k weights agree on it, the README's note does not say which runs it means",
    ),
    (
        "paper-21k learning rate",
        "the only public 21k value is in the names of the released checkpoints "
        "(pretrain_deit_tiny_2d-ofdb21k_..._lr5.0e-4_epochs15238_bs1024_amp): ViT-Tiny runs; no ViT-Base "
        "21k learning rate is published",
        "paper-21k's ViT-Base uses the ViT-Tiny runs' 5e-4 per 512 (1e-3 at 1,024): an inference, "
        "not a published ViT-Base value",
    ),
    (
        "augmentation of the released checkpoints",
        "the released 2D checkpoints are named ..._2d-ofdb1k_patch_... and ..._2d-ofdb21k_patch_..., which "
        "reads as the random pattern augmentation (Table 1's best row); the 3D-21k one is named "
        "..._3d-ofdb21k_edgar_...; the README does not say what the words mean",
        "paper runs the default augmentation and pattern as separate rows (paper-short, sized to decide "
        "fewer claims, runs the default); paper-21k "
        "pre-trains with the default augmentation, as Table 3 names none: a user who wants the released "
        "weights' likely recipe adds --augment pattern",
    ),
    (
        "precision",
        f"the checkpoint names end in _amp, and {MAIN_PY} runs fp16 autocast with a gradient scaler; the "
        "ImageNet-1k fine-tuning of the CVPR 2022 ViT repository runs fp32",
        "paper and paper-short run both phases in fp16 with a scaler (OFDB's main.py trains both); "
        "paper-21k pre-trains in fp16 and fine-tunes ImageNet-1k in fp32; bf16 stays the default of a "
        "custom config, listed as a deviation",
    ),
    (
        "the a x 0.2 weight row",
        f"{GEN_2D}: weights/one_ins.csv is all ones; the default --weight_csv is weights/weights_0.4.csv, "
        "whose first row scales a by 0.2",
        "OFDB's images use the first row of weights_0.4.csv (a x 0.2), cited to that file",
    ),
)


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The public recipe's value equals ours.
SAME = _Marker("SAME")
#: The public recipe has no such setting (bookkeeping, our own knobs).
NO_PUBLIC = _Marker("NO_PUBLIC")
#: Keep the public value of the profile this one is derived from (our shrunken profiles).
INHERIT = _Marker("INHERIT")


@dataclass(frozen=True)
class Cite:
    """The source of one value and the public recipe's value for the same setting.

    Attributes:
        source: where the value comes from, in words (``script: setting`` or ``ours: why``).
        public: the public recipe's value, or ``SAME`` (= ours), ``NO_PUBLIC`` or ``INHERIT``.
    """

    source: str
    public: object = SAME


def pub(source: str) -> Cite:
    """Our value is the public one, from ``source``."""
    return Cite(source, SAME)


def differs(source: str, public: object) -> Cite:
    """Our value departs from the public ``public`` on purpose; ``source`` says why."""
    return Cite(source, public)


def ours(reason: str, public: object = INHERIT) -> Cite:
    """Our own choice (``reason``); by default the public value of the base profile stays."""
    return Cite(f"ours: {reason}", public)


def resolve_public(cite: Cite, value: object, base: Cite | None) -> Cite:
    """``cite`` with ``SAME`` replaced by ``value`` and ``INHERIT`` by ``base``'s public value."""
    if cite.public is SAME:
        return Cite(cite.source, value)
    if cite.public is INHERIT:
        if base is None:
            raise ValueError(f"nothing to inherit a public value from: {cite.source}")
        return Cite(cite.source, base.public)
    return cite
