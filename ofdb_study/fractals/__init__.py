"""The fractal wing: IFS systems, the exact category search, the numba renderers, the datasets.

Modules: ``defaults`` (the public generators' settings, written once), ``ifs`` (systems,
FractalDB's weight rows, the CSV format), ``mt`` (NumPy's legacy MT19937 in numba, the cached
chaos-game uniforms), ``kernels`` (chaos game, NaN rule, rescale, drawing), ``render``, ``search``
(and the cached first categories), ``datasets`` (OFDB and FractalDB defined once, for disk and
memory), ``png``, ``build`` (ImageFolder trees with a manifest), ``formats`` (WebDataset and
parquet shards), ``compare`` (someone's parameters against the exact search), ``onepfrac``
(1p-frac), ``ofdb3d`` and ``kernels3d`` (3D-OFDB), ``kinds`` (the table of pre-training data kinds
that every command, source, tag and card reads).

Nothing here imports torch, pandas or matplotlib: the data commands and the explorer stay light.
"""
