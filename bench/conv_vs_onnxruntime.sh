#!/usr/bin/env bash
# Our convolution kernels beside ONNX Runtime, on this machine, in the same run.
#
#   bench/conv_vs_onnxruntime.sh [--threads N] [--reps N] [--rounds N]
#
# The two sides take turns for --rounds rounds (each side best of --reps runs per shape per
# round), and the table keeps each side's best: a burst of load from other users of the machine
# then hurts neither side more than the other.
#
# Installs onnxruntime and onnx into a throwaway virtualenv under target/ (git-ignored), exports
# single conv layers to ONNX there and times them; times ours with the conv_bench example (and
# the face ResNet on 16 chips when the model is found: $VISAGE_MODELS or ../shared/models); then
# prints one table with GFLOP/s and our/ORT ratios. Results are best-of-N: on a shared machine,
# run it when `uptime` shows little load.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2
REPS=5
ROUNDS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
VENV=target/ort-venv
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet onnxruntime onnx numpy
fi
MODEL=""
for dir in "${VISAGE_MODELS:-}" ../shared/models; do
  if [[ -n "$dir" && -f "$dir/dlib/dlib_face_recognition_resnet_model_v1.dat" ]]; then
    MODEL="$dir/dlib/dlib_face_recognition_resnet_model_v1.dat"; break
  fi
done
cargo build --release -q -p visage-nn --example conv_bench
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "load before: $(uptime)" >&2
for ((round = 0; round < ROUNDS; round++)); do
  "$VENV/bin/python" bench/conv_vs_onnxruntime.py --threads "$THREADS" --reps "$REPS" >> "$OUT/ort.jsonl"
  target/release/examples/conv_bench --threads "$THREADS" --reps "$REPS" ${MODEL:+--model "$MODEL"} >> "$OUT/ours.jsonl"
done
echo "load after: $(uptime)" >&2
"$VENV/bin/python" - "$OUT/ours.jsonl" "$OUT/ort.jsonl" "$THREADS" <<'PY'
import json, sys
def best(path):
    out = {}
    for r in map(json.loads, open(path)):
        key = (r["case"], r["shape"])
        if key not in out or r["ms"] < out[key]["ms"]:
            out[key] = r
    return out
ours = list(best(sys.argv[1]).values())
ort = best(sys.argv[2])
version = next(iter(ort.values()))["ort"] if ort else "?"
print(f"threads: {sys.argv[3]}; ONNX Runtime {version}; best of all rounds")
print(f"| case | shape | visage ms | visage GFLOP/s | ORT ms | ORT GFLOP/s | speed visage / ORT |")
print(f"|---|---|---:|---:|---:|---:|---:|")
for r in ours:
    o = ort.get((r["case"], r["shape"]))
    if o:
        # Both sides do the same work, so the ratio is one of times (the two FLOP counters
        # may count the face ResNet's clipped residual blocks differently).
        print(f"| {r['case']} | {r['shape']} | {r['ms']:.1f} | {r['gflops']:.1f} | {o['ms']:.1f} | {o['gflops']:.1f} | {o['ms'] / r['ms']:.2f}x |")
    else:
        print(f"| {r['case']} | {r['shape']} | {r['ms']:.1f} | {r['gflops']:.1f} | – | – | – |")
PY
