#!/usr/bin/env bash
# One prepared GPU check (the device tool's `run`: one call, under 10 minutes):
# the 200-candidate CHGNet population, one-at-a-time ASE loop vs batched, on the GPU.
#
#   run: bash benchmarks/gpu_check.sh            (carry: .whl when the machine lacks
#                                                  chgnet/torch-sim; see benchmarks/README)
#   here, to try the script on a CPU:  DEVICE=cpu N=4 SIZES=2 STEPS=5 bash benchmarks/gpu_check.sh
#
# N structures, SIZES batch sizes, STEPS FIRE steps, DEVICE (cuda).  The loop row takes
# most of the time (about 47 ms per structure-step on an H200 earlier: 200 x 30 steps
# is ~5 min), so the default batch sizes are two.  JSON and the log go to $OUT (or
# benchmarks/results/ here).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
SIZES=${SIZES:-32,64}
STEPS=${STEPS:-30}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import chgnet, torch_sim" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 benchmarks/batched.py --device "$DEVICE" --n "$N" --max-atoms 12 --steps "$STEPS" \
    --batch-sizes "$SIZES" --threads 1 --out "$OUT/batched_${N}_${DEVICE}.json" \
    2>&1 | grep -v -i warning | tee "$OUT/batched_${N}_${DEVICE}.log"
