"""The fractal wing: IFS systems, the exact category search, the numba renderers, dataset builders.

Modules: ``ifs`` (systems, FractalDB's weight rows, the CSV format), ``mt`` (NumPy's legacy
MT19937 in numba), ``kernels`` (chaos game, NaN rule, rescale, drawing), ``render``, ``search``,
``png``, ``build`` (ImageFolder trees with a manifest), ``ofdb3d`` and ``kernels3d`` (3D-OFDB).

Nothing here imports torch, pandas or matplotlib: the data commands and the explorer stay light.
"""
