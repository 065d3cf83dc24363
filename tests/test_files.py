"""The writers' shared rules: atomic writes, the output policy, versions, CPUs and the seed rule."""

import os

import pytest

from ofdb_study import files
from ofdb_study.errors import ParamError
from ofdb_study.seeds import SALT_INIT, SALT_ORDER, SALT_STEP, mix_seed


def test_atomic_write_bytes_and_text(tmp_path):
    target = tmp_path / "a.bin"
    files.atomic_write_bytes(target, b"first")
    files.atomic_write_bytes(target, lambda fh: fh.write(b"second"))
    assert target.read_bytes() == b"second"
    files.atomic_write_text(tmp_path / "b.txt", "caf\u00e9", durable=False)
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "caf\u00e9"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]  # no temporaries left


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def dying(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(target, dying)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


OWNED = ("state.json", "[0-9][0-9][0-9][0-9][0-9]*")


def test_empty_or_foreign_folder_starts_fresh(tmp_path):
    assert files.prepare_output(tmp_path / "new", what="x", owned=OWNED) is False
    assert not (tmp_path / "new").exists()  # nothing is created before the caller writes
    (tmp_path / "notes.txt").write_text("mine")
    assert files.prepare_output(tmp_path, what="x", owned=OWNED, resume=True) is False


def test_existing_output_is_refused_resumed_or_forced(tmp_path):
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "00001").mkdir()
    (tmp_path / "00001" / "a.png").write_bytes(b"png")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ParamError) as err:
        files.prepare_output(tmp_path, what="a search", owned=OWNED)
    msg = str(err.value)
    assert msg.startswith("out:") and "a search" in msg and "--resume" in msg and "--force" in msg
    with pytest.raises(ParamError, match="out:.*--force to replace it") as err:
        files.prepare_output(tmp_path, what="a 3D search", owned=OWNED, resumable=False)
    assert "--resume" not in str(err.value)
    with pytest.raises(ParamError, match="force"):
        files.prepare_output(tmp_path, what="x", owned=OWNED, resume=True, force=True)
    assert files.prepare_output(tmp_path, what="x", owned=OWNED, resume=True) is True
    assert files.prepare_output(tmp_path, what="x", owned=OWNED, force=True) is False
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # only what the output owns went


def test_a_file_is_not_an_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ParamError, match="out: .* is not a folder"):
        files.prepare_output(tmp_path / "f", what="x", owned=OWNED, force=True)


def test_package_versions():
    versions = files.package_versions("no-such-distribution-here")
    assert versions["ofdb-study"] and versions["numpy"] and versions["numba"] and versions["python"]
    assert versions["no-such-distribution-here"] is None


def test_usable_cpus_without_affinity(monkeypatch):
    assert files.usable_cpus() >= 1
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert files.usable_cpus() == 3 == files.resolve_workers(None)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert files.usable_cpus() == 1
    assert files.resolve_workers(2) == 2
    with pytest.raises(ParamError, match="workers"):
        files.resolve_workers(0)


def test_mix_seed_is_pinned_and_separates_streams():
    # Pinned: a change here changes every seeded stream of the package (data order, masks, init).
    assert mix_seed(0, 0) == 0x0E7494F907A55052
    assert len({mix_seed(0, SALT_STEP), mix_seed(0, SALT_INIT), mix_seed(0, SALT_ORDER)}) == 3
    assert mix_seed(1, 2) != mix_seed(2, 1) and mix_seed(1) != mix_seed(1, 0)
    assert all(0 <= mix_seed(s, -5, 2**62) < 2**63 for s in range(20))


def test_a_param_error_survives_a_process_boundary():
    """A worker's ParamError reaches the parent as itself (a process pool pickles it)."""
    import pickle

    pytest.importorskip("torch")
    from ofdb_study.errors import ParamError
    from ofdb_study.train.batched.sources import DoesNotFit

    for error in (ParamError("out", "x is taken"), DoesNotFit("the tree", 2**31, 2**30, "cuda:0")):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and back.param == error.param and str(back) == str(error)
