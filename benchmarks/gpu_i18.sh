#!/usr/bin/env bash
# Curvature at 10⁶ and 10⁷ parameters on one GPU (the Tanh MLP of benchmarks/hessian_eigenvalues.py, float32, n = 2048):
# top-10, λ_min (value test, 1e-6), Hutch++ trace and certify of overparam, then curvlinops + scipy eigsh (top-10,
# λ_min, trace) and PyHessian (top-10, trace; 10⁶ only). Each part runs under its own time limit, so a slow baseline
# cannot take the others' time, and prints each row as it is measured; md/json/log under $OUT. About 4 minutes on an
# H200 at most (the limits add up to 225 s, plus start-up). Left out to stay within that: the spectral density and
# hessian-eigenthings (measured on the CPU), PyHessian at 10⁷ (its deflated power iteration takes 200+ products per
# run), λ_min by the residual test (the value test only), repeats of anything whose first run takes over 10 s.
#
#   OUT=/tmp/out bash benchmarks/gpu_i18.sh                                   # on the GPU machine
#   OUT=/tmp/out DEVICE=cpu SIZES="3e3 1e4" LIMIT_SCALE=0.2 bash benchmarks/gpu_i18.sh   # a CPU smoke test
set -u
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
read -r SMALL LARGE <<< "${SIZES:-1e6 1e7}"
SCALE=${LIMIT_SCALE:-1}
PY=${PYTHON:-python}
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true

part() {  # part NAME LIMIT_S ARGS...: one run of the benchmark under a time limit, rows to the log as they come
  local name=$1 limit=$2
  shift 2
  limit=$(awk -v l="$limit" -v s="$SCALE" 'BEGIN { printf "%d", l * s + 1 }')
  echo "== $name (limit ${limit} s)" | tee -a "$OUT/hessian_eigenvalues_gpu.log"
  timeout "$limit" "$PY" hessian_eigenvalues.py --device "$DEVICE" --models mlp --n 2048 --batch 2048 \
      --lanczos-tests value --max-lanczos 400 --certify-products 500 --trace-products 99 --repeats 3 --slow 10 \
      --large 5e6 --out "$OUT" --name "hessian_eigenvalues_${DEVICE}_$name" "$@" 2>&1 \
      | tee -a "$OUT/hessian_eigenvalues_gpu.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && rc="124: cut at the limit, the rows above were measured"
  echo "== $name exit $rc" | tee -a "$OUT/hessian_eigenvalues_gpu.log"
}

part small_overparam 35 --params "$SMALL" --tools overparam --tasks top10 lambda_min trace certify
part small_baselines 50 --params "$SMALL" --tools curvlinops pyhessian --tasks top10 lambda_min trace
part large_overparam 60 --params "$LARGE" --tools overparam --tools-large overparam --tasks top10 lambda_min trace certify
part large_baselines 80 --params "$LARGE" --tools curvlinops --tools-large curvlinops --tasks top10 lambda_min trace
# one table of the four parts (accuracy against the best value of all of them)
"$PY" hessian_eigenvalues.py --combine "hessian_eigenvalues_${DEVICE}_small_overparam" \
    "hessian_eigenvalues_${DEVICE}_small_baselines" "hessian_eigenvalues_${DEVICE}_large_overparam" \
    "hessian_eigenvalues_${DEVICE}_large_baselines" --out "$OUT" --name "hessian_eigenvalues_${DEVICE}" \
    2>&1 | tee -a "$OUT/hessian_eigenvalues_gpu.log"
exit 0
