#!/usr/bin/env bash
# The CUDA half of issue 16, as one script for a machine with a GPU (about 3-5 minutes on an
# H100; every part has its own time limit, together 9.5 minutes at most):
#   1. install the checkout (no dependencies: torch is already there),
#   2. tests/test_cuda.py (the captured step, bf16, channels-last, side by side, the
#      autotuner and TF32 for conv nets),
#   3. benchmarks/train_speed.py on CUDA: the MNIST MLP at batch 32 and 512 and the CNN at
#      batch 128; the DataLoader script, the expert loop (whole step in one CUDA graph),
#      Workbench headless and Workbench as the app's worker drives it (stored run, the app's
#      monitors), interleaved epoch by epoch.
# Results go to $OUT (default ./gpu-results): test_cuda.txt, train_speed_cuda.json and .txt,
# env.txt, and summary.txt with each part's exit status. Exit status: 0 when every part passed.
#
# MNIST (the four *-ubyte.gz files, 11 MB) is looked for in $MNIST_ROOT, then gpu-data/mnist in
# the checkout (git ignores gpu-data/: carry it to the GPU machine), then
# /work/shared/datasets/mnist. Usage, from the repository root:
#   mkdir -p gpu-data && cp -r /work/shared/datasets/mnist gpu-data/
#   bash benchmarks/gpu_check.sh        # on the GPU machine; OUT=folder for the results
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-results}"
mkdir -p "$OUT"
: > "$OUT/summary.txt"

for candidate in "${MNIST_ROOT:-}" gpu-data/mnist /work/shared/datasets/mnist; do
  if [ -n "$candidate" ] && [ -f "$candidate/train-images-idx3-ubyte.gz" ]; then
    MNIST_ROOT="$(cd "$candidate" && pwd)"
    break
  fi
done
if [ -z "${MNIST_ROOT:-}" ] || [ ! -f "$MNIST_ROOT/train-images-idx3-ubyte.gz" ]; then
  echo "no MNIST found: set MNIST_ROOT or copy the four files to gpu-data/mnist" \
    | tee -a "$OUT/summary.txt"
  exit 2
fi
export MNIST_ROOT

status=0
part() {  # part NAME SECONDS COMMAND...: run, keep its output, record its exit status
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] || status=1
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  python - <<'PY' 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version())
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
PY
  nproc
} > "$OUT/env.txt"

if [ "${SKIP_INSTALL:-0}" != 1 ]; then  # SKIP_INSTALL=1: a dry run on a machine set up already
  part install 90 python -m pip install --no-deps --no-build-isolation -q -e .
fi
part test_cuda 180 python -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py
# shellcheck disable=SC2086  # BENCH_ARGS: extra options, split on purpose (a quick dry run)
part train_speed_cuda 300 python benchmarks/train_speed.py --device "${DEVICE:-cuda}" \
  --models mlp,mlp:512,cnn --epochs 4 --repeats 2 --threads 1 \
  --contenders dataloader,expert,workbench,workbench-app \
  --out "$OUT/train_speed_cuda.json" ${BENCH_ARGS:-}
exit $status
