#!/usr/bin/env bash
# The nuclear route at paper scale on a GPU (run from the repository root on a lent machine; ~1 min on one H200):
#   1. one paper-scale point of `overparam reproduce nuclear-route --scale paper` at d = 400, α = 1 and 2, on CUDA
#      (data drawn on the GPU, convex solve to the study's gap 1e-9, errors and rank), wall seconds of each;
#   2. the floor benchmark at d = 400 on CUDA, float64 (whole solve to gap 1e-9) and float32 passes (gap 3e-5),
#      with the matmul's fraction of 67 TFLOP/s (the H200's fp64 tensor-core peak, also its fp32 non-tensor peak).
# The first point pays for CUDA's start-up, as a study's first point does.
# Results (md + json) are copied under $OUT. Test it on a CPU at a tiny size: DEVICE=cpu D=24 SUFFIX=_test.
set -euo pipefail
: "${OUT:?set OUT to the folder for the results}"
D=${D:-400}
DEVICE=${DEVICE:-cuda}
SUFFIX=${SUFFIX:-}
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
cd benchmarks
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu_i20_card.txt" 2>/dev/null || true
"$PY" nuclear_floor.py --device "$DEVICE" --sizes "$D" --paper-point 1 2 --name "nuclear_paper_point_$DEVICE$SUFFIX"
"$PY" nuclear_floor.py --device "$DEVICE" --sizes "$D" --solve-tol 1e-9 --peak-gflops 67000 \
    --name "nuclear_floor_$DEVICE$SUFFIX"
"$PY" nuclear_floor.py --device "$DEVICE" --sizes "$D" --pass-dtype float32 --solve-tol 3e-5 --peak-gflops 67000 \
    --name "nuclear_floor_${DEVICE}_float32$SUFFIX"
for f in "nuclear_paper_point_$DEVICE$SUFFIX" "nuclear_floor_$DEVICE$SUFFIX" "nuclear_floor_${DEVICE}_float32$SUFFIX"; do
    cp "results/$f.md" "results/$f.json" "$OUT/"
done
