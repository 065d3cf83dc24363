"""ofdb-study: exact, fast OFDB / FractalDB data; ViT pre-training on timm; the paper's study.

The root holds the base (``errors``, ``files``, ``seeds``); the wings above it, each importing only
downward: ``fractals`` (search, render, data sets; never imports torch), ``config`` (the profiles
and their sources), ``train``, ``explorer``, ``study`` (the plan, its executors, the book's
scripts), ``analysis`` (what the notebooks read) and ``cli``.
"""

__version__ = "0.1.0"
