"""The table of data kinds (``fractals.kinds``): every row has its sources, a tag and a builder."""

import inspect
import subprocess
import sys

import pytest

from ofdb_study.config import data_kind
from ofdb_study.fractals.kinds import BUILDS, KINDS, OPTION_TYPES, OPTIONS, data_path, kind_of
from ofdb_study.train.batched.sources import BATCHED_SOURCES
from ofdb_study.train.pretrain_data import LOADER_SOURCES
from ofdb_study.train.runinfo import KIND_TAG_NAMES


def _example(kind) -> str:
    """A ``data`` setting of this kind."""
    return kind.name if kind.in_memory else f"{kind.prefix}some/tree"


def test_every_kind_has_a_loader_source_and_a_batched_source():
    assert set(LOADER_SOURCES) == set(KINDS)
    assert set(BATCHED_SOURCES) == set(KINDS)


def test_tags_and_names_are_distinct_and_each_data_setting_finds_its_kind():
    tags = [k.tag for k in KINDS.values()]
    assert len(set(tags)) == len(tags) and all(tags)
    assert KIND_TAG_NAMES == {name: k.tag for name, k in KINDS.items()}
    builds = [k.build for k in KINDS.values() if k.build]
    assert len(set(builds)) == len(builds)
    for name, kind in KINDS.items():
        assert kind.name == name and kind.title and kind.about
        assert data_kind(_example(kind)) == name and kind_of(_example(kind)) is kind
        assert data_path(_example(kind)) == (None if kind.in_memory else "some/tree")
    assert [k.name for k in KINDS.values() if k.prefix == ""] == [list(KINDS)[-1]]  # one fallback, last


def test_builders_import_and_take_the_options_of_their_row():
    for name, kind in BUILDS.items():
        params = inspect.signature(kind.load_builder()).parameters
        rest = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key in ("workers", "resume", "force", "progress"):
            assert key in params or rest, f"build {name}: its builder takes no {key!r}"
        for key in (*kind.build_defaults, *kind.options):
            assert key in params, f"build {name}: its builder takes no {key!r}"
        for key in kind.options:
            assert OPTIONS[key].type in OPTION_TYPES


@pytest.mark.parametrize("kind", [k for k in KINDS.values() if k.build])
def test_build_refuses_an_option_its_kind_does_not_take(kind, tmp_path, capsys):
    from ofdb_study.cli import main

    other = next(key for key in OPTIONS if key not in kind.options)
    flag = OPTIONS[other].flag
    value = "1,1,1,1,1,1" if OPTIONS[other].type == "weights" else "2"
    out = tmp_path / "out"
    code = main(["build", kind.build, "--categories", "2", "--out", str(out), f"--{flag}", value, "--quiet"])
    assert code == 2 and flag in capsys.readouterr().err and not out.exists()


def test_the_table_imports_without_torch():
    code = "import sys, ofdb_study.fractals.kinds; assert 'torch' not in sys.modules and 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
