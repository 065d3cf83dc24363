"""The study wing: the papermill runner, the notebooks' helpers and the book's vendored scripts.

Modules: ``runner`` (train the plan, execute the notebooks, build the book), ``helpers`` (the
notebooks' helpers), ``vendor`` (the book's JavaScript from npm), ``pack`` (results archives),
``units``, ``backends``, ``cluster`` and ``plan_report`` (the plan as SLURM or local jobs through
submitit, and its report).

``from ofdb_study import study`` gives the notebooks their helpers (``study.data_plan``,
``study.glue_key``, ...) and the command line its runner (``run_study``, ``build_book``).
"""

from .helpers import (
    DataPlan,
    check_profile,
    construction_dir,
    data_plan,
    glue_key,
    load_search,
    measure_construction,
    sample_images,
    scale_gap,
)
from .plan import scaling_categories
from .runner import (
    DEFAULT_OUT,
    NOTEBOOKS,
    PARAMETERS_FILE,
    NotebookFailed,
    build_book,
    default_seeds,
    find_notebooks,
    run_study,
)

__all__ = [
    "DEFAULT_OUT",
    "NOTEBOOKS",
    "PARAMETERS_FILE",
    "DataPlan",
    "NotebookFailed",
    "build_book",
    "check_profile",
    "construction_dir",
    "default_seeds",
    "data_plan",
    "find_notebooks",
    "glue_key",
    "load_search",
    "measure_construction",
    "run_study",
    "sample_images",
    "scale_gap",
    "scaling_categories",
]
