#!/usr/bin/env bash
# The GPU machine's Python stack, built here from PyPI, and gpu_check.sh's dry run on it.
#
# The machine gpu_check.sh is written for has no registry and its own python3 with torch 2.11,
# torchvision 0.26, a numpy 2.x, timm, numba, pandas, scikit-learn, pillow and PyYAML, and none of
# submitit, papermill, nbformat, ipywidgets, webdataset, datasets or pytest. This script builds such
# a virtual environment (the newest timm, Pillow and numpy PyPI offers, since the machine's are not
# pinned), checks that the optional packages are absent, fetches the pure-Python wheels the GPU tests
# need into benchmarks/wheels/ (gpu_check.sh uses them where the interpreter has no pytest), imports
# every module of the package, runs tests/test_paper_scale.py (Pillow's posterize, timm's transforms,
# the uint8 evaluation set, accumulation) and `gpu_check.sh --cpu-dry-run` with that interpreter.
#
# Usage (from any folder):
#   benchmarks/device_stack.sh [VENV] [OUTDIR] [--reuse | --wheels-only]
#     VENV     the environment to build (default /tmp/ofdb-device-stack; outside the repository)
#     OUTDIR   the dry run's result folder (default /tmp/ofdb-device-stack-check)
#     --reuse  keep an existing VENV (check and dry run only)
#     --wheels-only  only fetch the wheels into benchmarks/wheels/ (seconds; before a GPU call, which
#              must carry that ignored folder)
# DEVICE_STACK_PYTHON picks the base interpreter (default python3). The venv's pip ignores this
# machine's pip configuration (PIP_CONFIG_FILE=/dev/null), whose constraints cap torch at the
# project's pins; nothing else is changed. Prints each phase's seconds; exits 1 if any phase failed.
set -uo pipefail

VENV=/tmp/ofdb-device-stack
OUTDIR=/tmp/ofdb-device-stack-check
REUSE=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --reuse) REUSE=1 ;;
        --wheels-only) REUSE=2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "device_stack.sh: unknown option $a" >&2; exit 2 ;;
        *) ARGS+=("$a") ;;
    esac
done
[[ ${#ARGS[@]} -ge 1 ]] && VENV=$(realpath -m "${ARGS[0]}")
[[ ${#ARGS[@]} -ge 2 ]] && OUTDIR=$(realpath -m "${ARGS[1]}")
cd "$(dirname "$(realpath "$0")")/.."

START=$(date +%s)
FAILED=()
phase() { echo; echo "== $* ($(( $(date +%s) - START )) s)"; }
fail() { echo "device_stack.sh: FAILED: $1"; FAILED+=("$1"); }

#: What the GPU image holds (the versions it has, or the newest where it does not say).
STACK=(torch==2.11.0 torchvision==0.26.0 "numpy>=2.4,<2.6" timm numba pandas scikit-learn pillow PyYAML)
#: What it lacks: the package must import and the dry run pass without them.
ABSENT=(submitit papermill nbformat ipywidgets webdataset datasets pytest)
#: Pure-Python wheels carried to the GPU machine for its tests (benchmarks/wheels/).
WHEELS=(pytest pytest-timeout pluggy iniconfig packaging pygments)

export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
if [[ $REUSE == 2 ]]; then
    mkdir -p benchmarks/wheels
    "${DEVICE_STACK_PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: -d benchmarks/wheels \
        "${WHEELS[@]}" || exit 1
    ls benchmarks/wheels
    exit 0
fi
if [[ $REUSE == 0 || ! -x "$VENV/bin/python" ]]; then
    phase "venv $VENV: ${STACK[*]}"
    "${DEVICE_STACK_PYTHON:-python3}" -m venv --clear "$VENV" || fail "venv"
    "$VENV/bin/python" -m pip install -q "${STACK[@]}" || fail "pip install"
fi
PY="$VENV/bin/python"

phase "versions"
"$PY" - <<'EOF' || fail "versions"
import importlib.metadata as md
import sys
print("python", sys.version.split()[0])
for name in ("torch", "torchvision", "numpy", "timm", "numba", "pandas", "scikit-learn", "pillow", "PyYAML"):
    print(f"{name} {md.version(name)}")
EOF

phase "absent: ${ABSENT[*]}"
for m in "${ABSENT[@]}"; do
    if "$PY" -c "import $m" 2>/dev/null; then fail "$m is installed (the GPU image lacks it)"; fi
done

phase "wheels for the GPU tests into benchmarks/wheels/: ${WHEELS[*]}"
mkdir -p benchmarks/wheels
"$PY" -m pip download -q --no-deps --only-binary=:all: -d benchmarks/wheels "${WHEELS[@]}" || fail "pip download"
ls benchmarks/wheels

phase "import every module of the package"
"$PY" - <<'EOF' || fail "imports"
import importlib
import pkgutil
import ofdb_study

# What the GPU image lacks: a module that needs one of these (the SLURM executor, the notebook
# runner, the explorer's widget, the plots) is listed, not failed; any other error fails.
ABSENT = {"submitit", "papermill", "nbformat", "ipywidgets", "webdataset", "datasets", "matplotlib",
          "anywidget", "selenium", "nbclient", "jupyter_book", "pytest"}
bad, needs = [], []
for m in pkgutil.walk_packages(ofdb_study.__path__, "ofdb_study."):
    if m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
    except ModuleNotFoundError as e:
        (needs if (e.name or "").split(".")[0] in ABSENT else bad).append(f"{m.name}: needs {e.name}")
    except Exception as e:  # noqa: BLE001
        bad.append(f"{m.name}: {type(e).__name__}: {e}")
print("\n".join(f"{n} (absent on the GPU image)" for n in needs))
print("\n".join(bad) or "every other module imports")
raise SystemExit(1 if bad else 0)
EOF

phase "the version-skew and paper-scale tests on this stack (pytest from benchmarks/wheels/)"
WHEEL_DIR=$(mktemp -d)
for w in benchmarks/wheels/*.whl; do "$PY" -m zipfile -e "$w" "$WHEEL_DIR" || fail "unpack $w"; done
PYTHONPATH="$PWD:$WHEEL_DIR" HF_HUB_OFFLINE=1 "$PY" -m pytest tests/test_paper_scale.py -q -p no:cacheprovider \
    || fail "tests/test_paper_scale.py"
rm -rf "$WHEEL_DIR"

phase "gpu_check.sh $OUTDIR --cpu-dry-run"
rm -rf "$OUTDIR"
OFDB_PYTHON="$PY" benchmarks/gpu_check.sh "$OUTDIR" --cpu-dry-run || fail "gpu_check.sh --cpu-dry-run"
ls "$OUTDIR"

phase "done"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "device_stack.sh: ${#FAILED[@]} failed: ${FAILED[*]}"
    exit 1
fi
echo "device_stack.sh: passed in $(( $(date +%s) - START )) s"
