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
