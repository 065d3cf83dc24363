#!/usr/bin/env bash
# Every GPU check of this package in one call (about 8-10 minutes on one H200):
#   1. the card, the driver and the torch build;
#   2. the gpu-marked tests (pytest -m gpu tests/test_gpu.py);
#   3. bench_train.py at the paper's settings: ViT-Tiny/16 (batch 256, 224 px, OFDB-1k) eager with
#      the batched-alone rate of every data kind, the same compiled, and ViT-Base/16 (the 21k recipe's
#      model, at batch 256 and 1,000 categories to stay within the time) eager; each prints the bare
#      step, our step fed by the loader and by the batched pipeline, and the data alone;
#   4. the projected hours of every Table-1 row (240k steps) and of the 21k pre-training;
#   5. the paper-short pilot: one seed, --pilot-steps steps of each of its pre-training rows (does
#      each own task start to learn, the step rate and the pipeline each ran with; about 1-2 minutes
#      at 500 steps where the batched pipeline keeps up), no fine-tuning (no CIFAR-100 offline).
#
# Usage (from any folder; the repository is the one holding this script):
#   benchmarks/gpu_check.sh LOG [--install] [--cpu-dry-run] [--python PY] [--workers N] [--pilot-steps S]
#     LOG            where the whole output goes (it is also printed)
#     --install      make .venv-gpu (seeing the system packages) and pip install -r requirements.txt
#     --cpu-dry-run  tiny sizes, any device: checks that the script runs (figures mean nothing)
#     --python PY    the interpreter (default: .venv/bin/python if present, else python3)
#     --workers N    loader processes of the loader rows (default: CPU count - 1, at most 15)
#     --pilot-steps S  steps of each paper-short pilot row (default 500; 0 skips the pilot)
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
LOG=$(realpath -m "$1")
shift
INSTALL=0
DRY=0
PY=""
WORKERS=""
PILOT_STEPS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --install) INSTALL=1 ;;
        --cpu-dry-run) DRY=1 ;;
        --python) PY="$2"; shift ;;
        --workers) WORKERS="$2"; shift ;;
        --pilot-steps) PILOT_STEPS="$2"; shift ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$(realpath "$0")")/.."
mkdir -p "$(dirname "$LOG")"
exec > >(tee "$LOG") 2>&1

if [[ $INSTALL == 1 ]]; then
    python3 -m venv --system-site-packages .venv-gpu  # wheels already on the machine count
    .venv-gpu/bin/python -m pip install -q -r requirements.txt
    PY=.venv-gpu/bin/python
fi
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [[ -z "$WORKERS" ]]; then
    WORKERS=$("$PY" -c "import os; print(max(1, min(15, len(os.sched_getaffinity(0)) - 1)))")
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TQDM_DISABLE=1
OUT=$(mktemp -d)
START=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - START )) s)"; }

step "card"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" - <<'EOF'
import torch
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available: {cuda}")
if cuda:
    print("card:", torch.cuda.get_device_name(0))
EOF
git log -1 --format='commit %H' 2>/dev/null || true

if [[ $DRY == 1 ]]; then
    TINY=(--profile paper --categories 8 --batch-size 8 --img-size 64 --render-size 64 --render-points 5000
          --steps 2 --warmup 1 --workers 1)
    BASE=(--profile paper-21k --categories 8 --batch-size 4 --img-size 64 --render-size 64 --render-points 5000
          --steps 1 --warmup 1 --workers 1)
    TESTS=(tests/test_gpu.py -m gpu -q)
    PILOT_STEPS=${PILOT_STEPS:-2}
    PILOT=(--categories 4 --set img_size=32 --set depth=1 --set embed_dim=32 --set num_heads=2
           --set batch_size=8 --set render_size=32 --set render_points=1500 --set warmup_steps=1
           --set eval_batch_size=16 --set eval_per_category=2 --set num_workers=0)
else
    TINY=(--profile paper --steps 20 --warmup 5 --workers "$WORKERS")
    BASE=(--profile paper-21k --categories 1000 --batch-size 256 --steps 10 --warmup 3 --workers "$WORKERS")
    TESTS=(tests/test_gpu.py -m gpu -q)
    PILOT_STEPS=${PILOT_STEPS:-500}
    PILOT=(--set eval_per_category=2 --set num_workers="$WORKERS")
fi
KINDS=default,rotation,fluctuation,pattern,texture,both,fractaldb

step "gpu-marked tests"
"$PY" -m pytest "${TESTS[@]}" -p no:cacheprovider || echo "gpu tests FAILED (exit $?)"

step "ViT-Tiny/16, paper recipe, eager (with every data kind)"
"$PY" benchmarks/bench_train.py "${TINY[@]}" --kinds "$KINDS" --json "$OUT/tiny-eager.json"

step "ViT-Tiny/16, paper recipe, compiled"
"$PY" benchmarks/bench_train.py "${TINY[@]}" --compile --json "$OUT/tiny-compiled.json"

step "ViT-Base/16, 21k recipe, eager"
"$PY" benchmarks/bench_train.py "${BASE[@]}" --json "$OUT/base.json"

step "projected hours"
"$PY" benchmarks/project_hours.py "$OUT/tiny-eager.json" "$OUT/tiny-compiled.json" --base "$OUT/base.json"

if [[ $PILOT_STEPS -gt 0 ]]; then
    step "paper-short pilot: seed 0, $PILOT_STEPS steps of each pre-training row"
    "$PY" benchmarks/pilot.py --profile paper-short --steps "$PILOT_STEPS" --no-finetune "${PILOT[@]}" \
        --out "$OUT/pilot-paper-short.json" || echo "paper-short pilot FAILED (exit $?)"
fi
cp "$OUT"/*.json "$(dirname "$LOG")/" 2>/dev/null || true
step "done; log in $LOG"
