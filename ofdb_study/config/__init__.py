"""The config wing: every per-profile number with its source.

Modules: ``schema`` (``TrainConfig``, ``resolve``, the profile types and the study's row table),
``profiles`` (the profiles as data: ``paper``, ``paper-short``, ``paper-21k``, ``mini``, ``smoke``),
``sources`` (the public files a value is cited to), ``recipe`` (the recipe page, generated) and
``citation`` (the paper and the package's licence). ``from ofdb_study.config import X`` gives the
names of ``schema`` and ``profiles``.
"""

from .profiles import (
    MINI,
    PAPER,
    PAPER_21K,
    PAPER_SHORT,
    PROFILES,
    SMOKE,
    data_kind,
    get_profile,
    phase_config,
)
from .schema import (
    ALL_ROWS,
    FINETUNE_ONLY,
    IMAGENET_TRAIN_IMAGES,
    KEYED_UNLESS_DEFAULT,
    LR_REFERENCE_BATCH,
    NOT_READ_BY,
    OPERATIONAL,
    PHASES,
    PIPELINES,
    PRECISIONS,
    PRETRAIN_ONLY,
    ROWS,
    DataPlan,
    Profile,
    Recipe,
    Resolved,
    StudyPlan,
    TrainConfig,
    resolve,
    steps_for,
)

__all__ = [
    "ALL_ROWS",
    "FINETUNE_ONLY",
    "IMAGENET_TRAIN_IMAGES",
    "KEYED_UNLESS_DEFAULT",
    "LR_REFERENCE_BATCH",
    "MINI",
    "NOT_READ_BY",
    "OPERATIONAL",
    "PAPER",
    "PAPER_21K",
    "PAPER_SHORT",
    "PHASES",
    "PIPELINES",
    "PRECISIONS",
    "PRETRAIN_ONLY",
    "PROFILES",
    "ROWS",
    "SMOKE",
    "DataPlan",
    "Profile",
    "Recipe",
    "Resolved",
    "StudyPlan",
    "TrainConfig",
    "data_kind",
    "get_profile",
    "phase_config",
    "resolve",
    "steps_for",
]
