#!/usr/bin/env bash
# Curvature at 10⁷ parameters on one GPU (benchmarks/hessian_eigenvalues.py, float32 IEEE, n = 2048 for the MLP and 512
# for the CNN, one batch): every task of overparam on the MLP; the baselines' top-10 and λ_min (hessian-eigenthings'
# Lanczos, PyHessian's power iteration; curvlinops + eigsh's MLP top-10 took 131 s and its λ_min does not finish in
# minutes at 10⁷, so it is left out), trace and density (curvlinops, hessian-eigenthings, PyHessian); on the CNN
# overparam's top-10, λ_min, trace and density, curvlinops' trace and curvlinops + eigsh's top-10 and λ_min; then the
# 10⁶ MLP's trace (overparam, curvlinops). Each part under its own time limit (scaled by LIMIT_SCALE), rows printed as
# measured, one combined table at the end; md/json under $OUT. About 9 minutes on one H200 (the parts' times in
# benchmarks/results/hessian_eigenvalues_cuda_1e7.md; overparam's parts and mlp_eig_baselines took 4 minutes on
# 2026-11-27, the CNN in IEEE float32, about 3.5× slower than the TF32 rows of the committed eigsh parts).
#
#   OUT=/tmp/out bash benchmarks/hessian_eigenvalues_gpu.sh                                 # on the GPU machine
#   OUT=/tmp/out DEVICE=cpu PARAMS=3e3 SMALL=2e3 LIMIT_SCALE=0.3 bash benchmarks/hessian_eigenvalues_gpu.sh  # smoke test
#   OUT=/tmp/out PARTS="mlp_overparam cnn_overparam" bash benchmarks/hessian_eigenvalues_gpu.sh  # some parts only
#
# With PARTS, the combined table holds only those parts; combine them with the others' committed results here
# (python benchmarks/hessian_eigenvalues.py --combine NAME… --out FOLDER, every NAME.json in FOLDER).
set -u
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
P=${PARAMS:-1e7}
SMALL=${SMALL:-1e6}
SCALE=${LIMIT_SCALE:-1}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
common="--device $DEVICE --n 2048 --n-cnn 512 --batch 2048 --lanczos-tests value --top10-tests value residual
        --max-lanczos 800 --trace-products 99
        --certify-products 300 --repeats 3 --slow 10 --large 5e6 --out $OUT"
T0=$(date +%s)
parts=()
part() {  # part NAME LIMIT_S ARGS...: one run of the benchmark under a time limit
  local name=$1 limit
  if [ -n "${PARTS:-}" ] && [[ " $PARTS " != *" $name "* ]]; then return; fi
  limit=$(awk -v l="$2" -v s="$SCALE" 'BEGIN { printf "%d", l * s + 1 }')
  shift 2
  echo "== $name (limit $limit s) at $(( $(date +%s) - T0 )) s"
  timeout "$limit" "$PY" hessian_eigenvalues.py $common --name "hessian_eigenvalues_${DEVICE}_1e7_$name" "$@" 2>&1 \
      | grep -v "^{"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 124 ] && rc="124: cut at the limit, the rows above were measured"
  echo "== $name exit $rc"
  parts+=("hessian_eigenvalues_${DEVICE}_1e7_$name")
}
all="overparam curvlinops pyhessian eigenthings"
part mlp_overparam 150 --params "$P" --models mlp --tools overparam --tools-large $all \
    --tasks top10 lambda_min trace density certify
part mlp_eig_baselines 200 --params "$P" --models mlp --tools overparam eigenthings pyhessian --tools-large $all \
    --tasks top10 lambda_min
part mlp_baselines 170 --params "$P" --models mlp --tools curvlinops eigenthings pyhessian --tools-large $all \
    --tasks trace density
part cnn_overparam 150 --params "$P" --models cnn --tools overparam --tools-large $all \
    --tasks top10 lambda_min trace density
part cnn_curvlinops 45 --params "$P" --models cnn --tools curvlinops --tools-large $all --tasks trace
part cnn_eigsh 100 --params "$P" --models cnn --tools curvlinops --tools-large $all --tasks top10
part cnn_eigsh_min 210 --params "$P" --models cnn --tools curvlinops --tools-large $all --tasks lambda_min --repeats 1
part small_trace 60 --params "$SMALL" --models mlp --tools overparam curvlinops --tasks trace
"$PY" hessian_eigenvalues.py --combine "${parts[@]}" --out "$OUT" --name "hessian_eigenvalues_${DEVICE}_1e7" 2>&1
echo "== end at $(( $(date +%s) - T0 )) s"
exit 0
