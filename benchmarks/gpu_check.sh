#!/usr/bin/env bash
# Every GPU figure of this package in one call of at most 6 minutes on one H100, most valuable first.
# Each step runs under its own `timeout`; a step that fails or times out is named and the next runs.
# Each bench prints its rows as it measures them and writes its file into OUTDIR when it finishes:
#   preflight   (20 s)  versions, the card and its free memory, the numba kernels import, the batched
#                       augmentation built from the paper recipe's timm transform  -> preflight.json
#   tests       (60 s)  the gpu-marked tests but the compiled one, each under pytest-timeout's 45 s
#                                                                                    -> gpu-tests.xml
#   search      (30 s)  the exact category search of the 1,000 categories the benches and the
#                       pilot use, cached; it runs in the background from the start and this
#                       step waits for it (tiny searches itself if it is not done)
#   tiny        (90 s)  ViT-Tiny/16 at the paper recipe, eager, in the profile's precision: the bare
#                       step, ours fed by the loader and by the batched pipeline, and the batched
#                       pipeline alone on the main data kinds                        -> tiny.json
#   base        (50 s)  ViT-Base/16 (the 21k recipe) eager at batch 256: bare, ours, batched -> base.json
#   memory      (40 s)  one step of ViT-Base/16 at batch 1,024 (pre-training and fine-tuning as the
#                       paper-21k profile runs them), printing peak memory         -> memory.json
#   hours       (10 s)  the projected hours of every Table-1 row and of the 21k pre-training
#   pilot       (60 s)  the paper-short pilot: seed 0, --pilot-steps steps of each pre-training row,
#                       no fine-tuning                                               -> pilot.json
# OUTDIR also gets gpu_check.log (everything printed) and steps.json (each step's exit status and
# seconds): at most 8 files. The limits add up to 360 s (plus 5 s for each step killed at its
# limit). The exit status is 1 if a step failed.
#
# Usage (from any folder; the repository is the one holding this script):
#   benchmarks/gpu_check.sh OUTDIR [--cpu-dry-run] [--workers N] [--pilot-steps S]
#     --cpu-dry-run    the same steps shrunk to run on a CPU in a few minutes, each limit tripled for
#                      a shared machine's load (figures mean nothing)
#     --workers N      loader processes (default: CPU count - 1, at most 15)
#     --pilot-steps S  steps of each pilot row (default 200; 0 skips the pilot)
# Environment:
#   OFDB_PYTHON      the interpreter (default: python3, the image's own; nothing is installed)
#   GPU_CHECK_FAIL   a step name: that step is made to fail (to check that the others still run)
#   GPU_CHECK_ONLY   comma-separated step names: run only those
# Where the interpreter has no pytest, the tests step uses the wheels in benchmarks/wheels/ (made
# by benchmarks/device_stack.sh; pure Python, unpacked into a temporary folder).
set -uo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
fi
OUTDIR=$(realpath -m "$1")
shift
DRY=0
WORKERS=""
PILOT_STEPS=200
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cpu-dry-run) DRY=1 ;;
        --workers) WORKERS="$2"; shift ;;
        --pilot-steps) PILOT_STEPS="$2"; shift ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$(realpath "$0")")/.."
mkdir -p "$OUTDIR"
PY=${OFDB_PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
START=$(date +%s)
STEPS=()

# run_step NAME SECONDS COMMAND...: the command under `timeout`, its status kept; never stops the script.
run_step() {
    local name=$1 limit=$(( $2 * LIMIT_SCALE )) t0 rc note
    shift 2
    if [[ -n "${GPU_CHECK_ONLY:-}" && ",$GPU_CHECK_ONLY," != *",$name,"* ]]; then
        return 0
    fi
    t0=$(date +%s)
    echo
    echo "== $name (at $(( t0 - START )) s, limit $limit s): $*"
    if [[ "${GPU_CHECK_FAIL:-}" == "$name" ]]; then
        timeout -k 5 "$limit" "$PY" -c "raise SystemExit('made to fail by GPU_CHECK_FAIL=$name')"
    else
        timeout -k 5 "$limit" "$@"
    fi
    rc=$?
    note=ok
    if [[ $rc == 124 || $rc == 137 ]]; then
        note="timed out after $limit s"
    elif [[ $rc != 0 ]]; then
        note="failed (exit $rc)"
    fi
    [[ $note != ok ]] && echo "== STEP $name FAILED: $note"
    STEPS+=("$name|$rc|$(( $(date +%s) - t0 ))|$note")
}

if [[ -z "$WORKERS" ]]; then
    WORKERS=$("$PY" -c "import os; print(max(1, min(15, len(os.sched_getaffinity(0)) - 1)))" 2>/dev/null || echo 1)
fi
LIMIT_SCALE=1
if [[ $DRY == 1 ]]; then
    LIMIT_SCALE=3  # a shared development machine: the same steps, shrunk, with room for its load
    PRE=(--dry-run)
    SHRINK=(--categories 8 --batch-size 8 --img-size 64 --render-size 64 --render-points 5000 --workers 1)
    TINY=(--profile paper "${SHRINK[@]}" --steps 2 --warmup 1 --quick-model)
    BASE=(--profile paper-21k "${SHRINK[@]}" --steps 1 --warmup 1 --quick-model)
    MEM=(--dry-run)
    PILOT_STEPS=$(( PILOT_STEPS < 2 ? PILOT_STEPS : 2 ))
    PILOT=(--categories 4 --set img_size=32 --set depth=1 --set embed_dim=32 --set num_heads=2
           --set batch_size=8 --set render_size=32 --set render_points=1500 --set warmup_steps=1
           --set eval_batch_size=16 --set eval_per_category=2 --set num_workers=0)
else
    PRE=()
    TINY=(--profile paper --steps 20 --warmup 5 --workers "$WORKERS")
    BASE=(--profile paper-21k --categories 1000 --batch-size 256 --steps 8 --warmup 3 --workers "$WORKERS")
    MEM=()
    PILOT=(--set eval_per_category=2 --set num_workers="$WORKERS")
fi

# The interpreter's pytest, else the carried wheels unpacked into a folder of their own.
TEST_PATH=$PYTHONPATH
if ! "$PY" -c "import pytest" 2>/dev/null; then
    shopt -s nullglob
    wheels=(benchmarks/wheels/*.whl)
    shopt -u nullglob
    if [[ ${#wheels[@]} -gt 0 ]]; then
        for w in "${wheels[@]}"; do "$PY" -m zipfile -e "$w" "$SCRATCH/wheels" || true; done
        TEST_PATH="$PYTHONPATH:$SCRATCH/wheels"
        echo "pytest from benchmarks/wheels/: ${wheels[*]##*/}"
    fi
fi
TIMEOUT_OPT=()
if PYTHONPATH=$TEST_PATH "$PY" -c "import pytest_timeout" 2>/dev/null; then
    TIMEOUT_OPT=(--timeout 45)
fi

main() {
    echo "gpu_check.sh: $PY, results in $OUTDIR$([[ $DRY == 1 ]] && echo ', CPU dry run')"
    git log -1 --format='commit %H' 2>/dev/null || true
    # the category search (about 20 s on one core) overlaps the preflight and the tests
    local search_n=1000
    [[ $DRY == 1 ]] && search_n=8
    ( timeout -k 5 150 "$PY" -c "from ofdb_study.fractals.search import first_categories as f; f($search_n)" \
        >"$SCRATCH/search.log" 2>&1; echo $? >"$SCRATCH/search.rc" ) &
    local search_pid=$!
    run_step preflight 20 "$PY" benchmarks/preflight.py --json "$OUTDIR/preflight.json" "${PRE[@]}"
    run_step tests 60 env PYTHONPATH="$TEST_PATH" "$PY" -m pytest tests/test_gpu.py -m gpu -v -rA \
        -p no:cacheprovider -k "not compiled" "${TIMEOUT_OPT[@]}" --junitxml "$OUTDIR/gpu-tests.xml"
    run_step search 30 bash -c "while kill -0 $search_pid 2>/dev/null; do sleep 1; done; \
        cat '$SCRATCH/search.log'; exit \$(cat '$SCRATCH/search.rc')"
    run_step tiny 90 "$PY" benchmarks/bench_train.py "${TINY[@]}" --kinds default,pattern,fractaldb \
        --json "$OUTDIR/tiny.json"
    run_step base 50 "$PY" benchmarks/bench_train.py "${BASE[@]}" --no-loader --no-data --json "$OUTDIR/base.json"
    run_step memory 40 "$PY" benchmarks/memory_probe.py --json "$OUTDIR/memory.json" "${MEM[@]}"
    run_step hours 10 "$PY" benchmarks/project_hours.py "$OUTDIR/tiny.json" --base "$OUTDIR/base.json"
    if [[ $PILOT_STEPS -gt 0 ]]; then
        run_step pilot 60 "$PY" benchmarks/pilot.py --profile paper-short --steps "$PILOT_STEPS" --no-finetune \
            "${PILOT[@]}" --out "$OUTDIR/pilot.json"
    fi
    wait "$search_pid" 2>/dev/null
    echo
    echo "== summary (at $(( $(date +%s) - START )) s)"
    local failed=() s name rc secs note
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name rc secs note <<<"$s"
        printf '%-10s %5s s  %s\n' "$name" "$secs" "$note"
        [[ $note != ok ]] && failed+=("$name")
    done
    "$PY" - "$OUTDIR/steps.json" "${STEPS[@]}" <<'EOF'
import json, sys
rows = [dict(zip(("step", "exit", "seconds", "status"), s.split("|", 3))) for s in sys.argv[2:]]
for r in rows:
    r["exit"], r["seconds"] = int(r["exit"]), int(r["seconds"])
with open(sys.argv[1], "w") as f:
    json.dump({"steps": rows}, f, indent=1)
EOF
    if [[ ${#failed[@]} -gt 0 ]]; then
        echo "gpu_check.sh: FAILED steps: ${failed[*]}"
        return 1
    fi
    echo "gpu_check.sh: every step passed"
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
