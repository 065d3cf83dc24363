"""The public generators' settings, written once: every module and command imports them from here.

Plain numbers with no imports, so that the command line can show them in its help and the config
can use them as defaults without loading numba.
"""

# ---- 2D-OFDB (the public generator) -------------------------------------------------------------
#: Image side in pixels.
OFDB_SIZE = 362
#: Chaos-game points per image, the start point included.
OFDB_POINTS = 200_000
#: Padding in pixels on every side.
OFDB_PAD = 6
#: Factor on every map's ``a`` (row 1 of FractalDB's fluctuation table).
OFDB_A_WEIGHT = 0.2
#: Seed of the map-choice stream, reset for every render and shared by every category.
CHAOS_SEED = 100
#: Base seed of the patch masks of the built and in-memory datasets (``fractals.datasets``).
DATA_SEED = 0

# ---- the category search (FractalDB's, reused by 2D-OFDB) ---------------------------------------
SEARCH_SEED = 1
#: A candidate is kept when at least this share of the pixels is lit.
SEARCH_RATE = 0.2
SEARCH_POINTS = 100_000
SEARCH_SIZE = 512
SEARCH_PAD = 6

# ---- FractalDB: per category, weight rows x patch renders x flips ------------------------------
FRACTALDB_ROWS = 25
FRACTALDB_RENDERS = 10
FRACTALDB_FLIPS = 4
FRACTALDB_INSTANCES = FRACTALDB_ROWS * FRACTALDB_RENDERS * FRACTALDB_FLIPS  # 1,000

# ---- 3D-OFDB ------------------------------------------------------------------------------------
#: View side in pixels (image_render/render1view.py ``--img_size``).
OFDB3D_SIZE = 224
#: Chaos-game points of a rendered instance (3dfractal_render/instance.py ``--point_num``).
OFDB3D_POINTS = 10_000
#: Half-width of the view jitter in degrees: the public camera adds ``radians(uniform(-pi, pi))`` to
#: the azimuth, a uniform in [-pi, pi] read as degrees (about 3.14).
OFDB3D_JITTER_DEG = 3.141592653589793
#: Factor on every map's ``A[0, 0]`` in the public generator.
OFDB3D_A_WEIGHT = 0.4
#: Seed of the 3D search stream and of the view jitter.
OFDB3D_SEED = 1
OFDB3D_VIEWS = 12
#: Chaos-game points per search candidate, and the variance each axis must exceed.
SEARCH3D_POINTS = 10_000
SEARCH3D_MIN_VAR = 0.05

# ---- 1p-frac (the public generator, SUPER-TADORY/1p-frac) -----------------------------------------
ONEPFRAC_SIZE = 512
ONEPFRAC_POINTS = 100_000
ONEPFRAC_PAD = 6
ONEPFRAC_DELTA = 0.1
ONEPFRAC_SIGMA = 3.5
#: The data seed of the in-memory 1p-frac source (run seeds vary training, not the data, as for OFDB).
ONEPFRAC_SEED = 0

# ---- limits ---------------------------------------------------------------------------------------
#: Categories a search, data set or pre-training may hold: category files and folders are named
#: with five digits (``00000`` to ``99999``, the published layout), so 100,000 is the most there can
#: be (OFDB-21k needs 21,000).
MAX_CATEGORIES = 100_000
#: Scratch bytes the chaos game keeps per point (coordinates, pixel indices, map choices, uniforms).
POINT_BYTES = 48
