"""Unwritable outputs as a user whom permission bits stop: one line naming the parameter, exit
code 2, no traceback, nothing written or removed.

Root writes anywhere, so the other tests (and CI, which runs as root) never see a permission
error. Here every writing command runs as ``nobody`` (through ``setpriv``, else ``runuser``) when
the tests run as root, or as the test's own user otherwise, against outputs in a folder that user
cannot write: a new folder inside it, the folder itself, and an earlier output there with
``--force``. The commands run in one child process (``ofdb_study.cli.main`` per case, stderr
captured per case), so the interpreter starts, and numba compiles, once.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

import ofdb_study  # noqa: E402
from ofdb_study.cli import main  # noqa: E402

PACKAGE_ROOT = Path(ofdb_study.__file__).resolve().parents[1]

SMALL = ["--size", "32", "--points", "1500", "--quiet"]
FINETUNE = ["finetune", "--profile", "smoke", "--no-progress"]
#: ``(id, argv, parameter)``: ``OUT`` becomes the output, ``LOCKED`` the unwritable folder,
#: ``PARAMS`` a search's folder, ``RUN`` a finished pre-training run, ``FASHION`` a Fashion-MNIST
#: folder, ``PREV`` a finished search inside the unwritable folder, ``HOME`` the user's home.
COMMANDS = [
    ("search", ["search", "--categories", "2", "--out", "OUT"], "out"),
    ("build-ofdb", ["build", "ofdb", "--categories", "2", *SMALL, "--out", "OUT"], "out"),
    (
        "build-fractaldb",
        ["build", "fractaldb", "--categories", "1", "--renders", "1", *SMALL, "--out", "OUT"],
        "out",
    ),
    ("build-1pfrac", ["build", "1pfrac", "--categories", "2", *SMALL, "--out", "OUT"], "out"),
    (
        "build-webdataset",
        ["build", "ofdb", "--categories", "2", *SMALL, "--format", "webdataset", "--out", "OUT"],
        "out",
    ),
    (
        "build-parquet",
        ["build", "1pfrac", "--categories", "2", *SMALL, "--format", "parquet", "--out", "OUT"],
        "out",
    ),
    ("render", ["render", "--params", "PARAMS", "--size", "32", "--out", "OUT"], "out"),
    ("pretrain", ["pretrain", "--profile", "smoke", "--out", "OUT", "--no-progress"], "out"),
    (
        "finetune",
        [*FINETUNE, "--init", "RUN", "--dataset", "fashion-mnist", "--data-root", "FASHION", "--out", "OUT"],
        "out",
    ),
    ("export", ["export", "RUN", "--out", "OUT"], "out"),
]
CASES = [(f"{name}-new", [a.replace("OUT", "LOCKED/out") for a in argv], p) for name, argv, p in COMMANDS]
CASES += [(f"{name}-existing", [a.replace("OUT", "LOCKED") for a in argv], p) for name, argv, p in COMMANDS]
CASES += [
    ("search-force", ["search", "--categories", "2", "--out", "PREV", "--force"], "out"),
    ("export-force", ["export", "RUN", "--out", "LOCKED", "--force"], "out"),
    (
        "download-root",
        [*FINETUNE, "--init", "scratch", "--dataset", "cifar10", "--data-root", "LOCKED/data", "--download"]
        + ["--out", "HOME/run"],
        "data_root",
    ),
]

#: Run in the child: every case through ``main``, with a listing of the folder tree before and
#: after it (everything but the user's home), written as JSON to the file named in argv[2].
DRIVER = r"""
import contextlib, io, json, os, sys, traceback
from pathlib import Path

from ofdb_study.cli import main

base, home = Path(sys.argv[1]), Path(os.environ["HOME"])
cases = json.loads(Path(sys.argv[2]).read_text())

def listing():
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == home or home in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p.relative_to(base))] = [st.st_size, st.st_mtime_ns, st.st_mode]
    return out

results = {}
for case_id, argv in cases:
    before = listing()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException:
            code, err = None, io.StringIO(traceback.format_exc())
    after = listing()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    results[case_id] = {"code": code, "stderr": err.getvalue(), "changed": changed}
Path(sys.argv[3]).write_text(json.dumps(results))
"""


def _runner() -> tuple[list[str], int | None, int | None, str | None]:
    """``(command prefix, uid, gid, reason to skip)``: the prefix that runs a command as a user
    whom permission bits stop (empty when the tests do not run as root)."""
    if os.geteuid() != 0:
        return [], None, None, None
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return [], None, None, "running as root and there is no user 'nobody' to drop to"
    uid, gid = nobody.pw_uid, nobody.pw_gid
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"], uid, gid, None
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"], uid, gid, None
    return [], None, None, "running as root and neither setpriv nor runuser is installed to drop to 'nobody'"


def _unwritable(folder: Path) -> None:
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


@pytest.fixture(scope="module")
def results():
    """Case id -> {code, stderr, changed}, from one child process run as the unprivileged user."""
    prefix, uid, gid, skip = _runner()
    if skip:
        pytest.skip(skip)
    from fake_data import make_fashion

    base = Path(tempfile.mkdtemp(prefix="ofdb-unprivileged-"))
    base.chmod(0o755)
    try:
        home = base / "home"
        for sub in ("", "cache", "numba", "tmp", "mpl"):
            (home / sub).mkdir(parents=True, exist_ok=True)
            if uid is not None:
                os.chown(home / sub, uid, gid)
        env = dict(
            os.environ,
            HOME=str(home),
            OFDB_STUDY_CACHE=str(home / "cache"),
            NUMBA_CACHE_DIR=str(home / "numba"),
            MPLCONFIGDIR=str(home / "mpl"),
            TMPDIR=str(home / "tmp"),
            HF_HUB_OFFLINE="1",
            TQDM_DISABLE="1",
            PYTHONDONTWRITEBYTECODE="1",
            # the child imports the package this test imports, wherever it runs from
            PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
        )
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", "import ofdb_study, torch, timm; print(ofdb_study.__file__)"],
            capture_output=True,
            text=True,
            env=env,
            cwd=base,
            timeout=300,
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"{sys.executable} with this package cannot run as the unprivileged user: {last}")
        assert Path(probe.stdout.strip()).resolve() == Path(ofdb_study.__file__).resolve(), probe.stdout

        params, run, locked = base / "params", base / "run", base / "locked"
        assert main(["search", "--categories", "2", "--out", str(params)]) == 0
        assert main(["pretrain", "--profile", "smoke", "--out", str(run), "--no-progress"]) == 0
        fashion = make_fashion(base / "fashion")
        locked.mkdir()
        prev = locked / "prev"
        assert main(["search", "--categories", "2", "--out", str(prev)]) == 0
        for folder in (params, run, fashion):
            for p in (folder, *folder.rglob("*")):
                p.chmod(0o755 if p.is_dir() else 0o644)
        for folder in (prev, *prev.iterdir()):
            folder.chmod(0o644) if folder.is_file() else _unwritable(folder)
        _unwritable(locked)

        names = {
            "LOCKED": locked,
            "PARAMS": params,
            "RUN": run,
            "FASHION": fashion,
            "PREV": prev,
            "HOME": home,
        }

        def fill(arg: str) -> str:
            for key, path in names.items():
                arg = arg.replace(key, str(path))
            return arg

        cases = base / "cases.json"
        cases.write_text(json.dumps([(cid, [fill(a) for a in argv]) for cid, argv, _ in CASES]))
        found = home / "results.json"
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", DRIVER, str(base), str(cases), str(found)],
            capture_output=True,
            text=True,
            env=env,
            cwd=base,
            timeout=1200,
        )
        assert proc.returncode == 0 and found.is_file(), proc.stderr[-3000:]
        doc = json.loads(found.read_text())
        doc["_paths"] = {k: str(v) for k, v in names.items()}
        yield doc
    finally:
        for p in (base, *base.rglob("*")):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("case_id, argv, param", CASES, ids=[c[0] for c in CASES])
def test_an_unwritable_output_is_one_line_naming_it_and_nothing_written(results, case_id, argv, param):
    got = results[case_id]
    err = got["stderr"]
    assert got["code"] == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {param}: "), err
    assert "permission denied" in err, err
    where = results["_paths"]["LOCKED"]
    assert where in err.split(":", 2)[2], err  # the message names the folder, not a temporary
    assert ".tmp" not in err and "export-tmp" not in err, err
    assert got["changed"] == [], got["changed"]
