"""Test settings shared by every test: offline hubs, a quiet numba cache, small sizes."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The searched-category cache of the training engine goes to a throw-away folder, not ~/.cache.
os.environ.setdefault("OFDB_STUDY_CACHE", tempfile.mkdtemp(prefix="ofdb-study-cache-"))
