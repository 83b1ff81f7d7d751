#!/usr/bin/env bash
# The equal-epoch comparison QB-LIF (K = 4) vs CUBA (ours: K = 1, reset zero) at T in {1,2,4,8}
# (T = 4 with seeds 0, 1, 2), Fashion-MNIST conv, the same seed, schedule and epochs; the epoch
# is selected on the validation split (held out of the training file), the test accuracy is on
# all 10,000 test images through the windowed quantized forward (chip-exact:
# tests/training/test_training_window.py). One lane per family, in parallel, niced; a run whose
# card exists (or that is running: NAME.running) is skipped, so the script can be rerun until
# done (after a kill, remove the stale NAME.running files first). Run with PYTHONPATH set to the
# repository. Then:
#     python bench/headline_table.py        # table + plot into docs/ and bench/results/headline
# Budget (env): LIMIT training images, EPOCHS, VAL validation images; RUNS "T,seed ..."; OUT.
# PIDFILE (env, optional): kept holding the pids of the running training processes, one a line,
# so another session can pause the grid (kill -STOP / -CONT each pid).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-bench/results/headline}
LIMIT=${LIMIT:-4000}; EPOCHS=${EPOCHS:-2}; VAL=${VAL:-1000}; BATCH=${BATCH:-64}; LR=${LR:-3e-3}
RUNS=${RUNS:-"4,0 1,0 2,0 4,1 4,2 8,0"}     # T,seed pairs, run in this order
CKPT=${CKPT:-${TMPDIR:-/tmp}/qblif-headline}
PIDFILE=${PIDFILE:-}
mkdir -p "$OUT" "$CKPT"
lane() {   # $1 = neuron
    for run in $RUNS; do
        set -- "$1" ${run%,*} ${run#*,}
        name="$OUT/fmnist_$1_conv_T$2_s$3"
        [ -f "$name.json" ] || [ -f "$name.running" ] && continue
        touch "$name.running"
        nice -n 10 "$PY" -m qblif.cli.main train --dataset fashion-mnist --arch conv \
            --neuron "$1" --cuba-impl qblif --max-burst 4 --timesteps "$2" --seed "$3" \
            --limit "$LIMIT" --val-limit "$VAL" --epochs "$EPOCHS" --batch-size "$BATCH" \
            --lr "$LR" --threads 1 --no-progress --checkpoint "$CKPT/$(basename "$name").ckpt" \
            --out "$name.net" --force >> "$OUT/log_$1.txt" 2>&1 &
        echo $! > "$name.running"
        [ -n "$PIDFILE" ] && cat "$OUT"/*.running > "$PIDFILE" 2>/dev/null
        wait $!
        rm -f "$name.running"
        [ -n "$PIDFILE" ] && { cat "$OUT"/*.running > "$PIDFILE" 2>/dev/null || : > "$PIDFILE"; }
    done
}
lane qblif & lane cuba & wait
