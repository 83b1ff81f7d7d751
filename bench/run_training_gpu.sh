#!/bin/bash
# The training benchmark as it was run for the README: all nine runs (QB-LIF and CUBA at
# T = 1, 2, 4, 8, and ReLU) side by side on one CUDA GPU, each with the same wall-clock
# budget, exporting every spiking model. Needs torch with CUDA, numpy, h5py, matplotlib, tqdm
# and lava-dl's SLAYER: installed, or its source folder (the one holding lava/lib/dl/slayer,
# e.g. a copy of .venv/lib/python3.10/site-packages) in LAVA_DL_SRC. lava-nc is not needed.
# Fashion-MNIST: QBLIF_FMNIST_DIR (default /usr/share/datasets/fashion-mnist).
#
#   LAVA_DL_SRC=/path/to/site-packages bench/run_training_gpu.sh [OUT_DIR]
#
# CUBA_IMPL=qblif trains the CUBA runs through our plain-torch blocks (QB-LIF K=1, reset zero:
# lava-dl CUBA's forward, no CUDA kernel build); NEURONS, TIMESTEPS, JOBS, EPOCHS and BUDGET
# override the run list and budget (docs/training.md has the full-budget command lines).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-bench/results}
export PYTHONPATH=$PWD${LAVA_DL_SRC:+:$LAVA_DL_SRC}${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p "$OUT_DIR/models"
{ date -u; nvidia-smi -L; python3 -c "import sys, torch, numpy; print('Python', sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__)"; } \
  > "$OUT_DIR/training_machine.txt"
python3 bench/bench_training.py --dataset fashion-mnist --arch conv --timesteps "${TIMESTEPS:-1,2,4,8}" \
  --neurons "${NEURONS:-qblif,cuba,relu}" --cuba-impl "${CUBA_IMPL:-lava-dl}" --limit 0 --val-limit 2000 --test-limit 2000 --epochs "${EPOCHS:-40}" \
  --time-budget "${BUDGET:-340}" --batch-size 256 --lr 4e-3 --device cuda --jobs "${JOBS:-9}" --threads 1 \
  --save-models "$OUT_DIR/models" --out-dir "$OUT_DIR" 2>&1 | tee "$OUT_DIR/training_log.txt"
