#!/usr/bin/env bash
# One prepared GPU check (the device tool's `run`: one call, under 10 minutes):
# the 200-candidate population, one-at-a-time ASE loop vs batched, on the GPU, for
# CHGNet and for SevenNet-0 (torch-sim's native SevenNet model; issue 16's goal: batched
# at least 10x the loop's structures per second).
#
#   run: bash benchmarks/gpu_check.sh            (carry: .whl when the machine lacks
#                                                  chgnet/torch-sim; see benchmarks/README)
#   here, to try the script on a CPU:
#     DEVICE=cpu N=4 NLOOP=2 SIZES=2 STEPS=5 bash benchmarks/gpu_check.sh
#
# N structures, SIZES batch sizes, STEPS FIRE steps, DEVICE (cuda), MODELS (chgnet
# sevennet).  The loop rows take most of the time (about 47 ms per structure-step on an
# H200 earlier: 200 x 30 steps would be ~5 min per model), so the loop relaxes the
# first NLOOP (50) structures only and the speed-ups compare structures per second.
# The .whl folder must then hold sevenn 0.12.1 and its wheels too (e3nn, opt_einsum_fx,
# torch_geometric, matscipy, ...): the device machine reaches no package index.
# JSON and the logs go to $OUT (or benchmarks/results/ here).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200}
NLOOP=${NLOOP:-50}
SIZES=${SIZES:-32,64}
MODELS=${MODELS:-chgnet sevennet}
STEPS=${STEPS:-30}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import chgnet, torch_sim, sevenn" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
for MODEL in $MODELS; do
    python3 benchmarks/batched.py --model "$MODEL" --device "$DEVICE" --n "$N" \
        --serial-n "$NLOOP" --max-atoms 12 --steps "$STEPS" --batch-sizes "$SIZES" \
        --threads 1 --out "$OUT/batched_${N}_${DEVICE}_${MODEL}.json" \
        2>&1 | grep -v -i warning | tee "$OUT/batched_${N}_${DEVICE}_${MODEL}.log"
done
