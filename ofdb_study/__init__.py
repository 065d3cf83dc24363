"""ofdb-study: exact, fast OFDB / FractalDB data; ViT pre-training on timm; the paper's study.

The data side (``ifs``, ``search``, ``render``, ``datasets``) never imports torch.
"""

__version__ = "0.1.0"
