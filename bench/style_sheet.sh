#!/usr/bin/env bash
# Contact sheet of `visage style`: the photos in ../shared/data/style/photos under four paintings,
# at 512 px (coarse-to-fine: 256 px, then 512 px), MobileNetV2 with its defaults, starting from
# the content image (noise needs several times more iterations). Writes the
# results to target/style-sheet/ and the sheet and one run's loss curves to docs/images/.
#
#   bench/style_sheet.sh            # VISAGE_SHARED defaults to ../shared
#
# Runs at low priority on 2 threads; 20 runs of about 30 s each on the shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${VISAGE_SHARED:-../shared}
OUT=target/style-sheet
PHOTOS=${PHOTOS:-tubingen,golden_gate,hoovertowernight,chicago,stata}
PAINTINGS=${PAINTINGS:-starry_night,the_scream,wave,udnie}
ITERS=${ITERS:-100}
REFINE=${REFINE:-30}
mkdir -p "$OUT" docs/images
cargo build --release -p visage-cli -p visage-style --example style_sheet
BIN=${CARGO_TARGET_DIR:-target}/release
for photo in ${PHOTOS//,/ }; do
  for painting in ${PAINTINGS//,/ }; do
    result="$OUT/${photo}__${painting}.png"
    [ -f "$result" ] && continue
    extra=()
    if [ "$photo" = tubingen ] && [ "$painting" = starry_night ]; then
      extra=(--loss-plot docs/images/style-loss-curves.png --json)
    fi
    nice "$BIN/visage" style "$SHARED/data/style/photos/$photo.jpg" \
      "$SHARED/data/style/paintings/$painting.jpg" -o "$result" --models "$SHARED/models" \
      --size 512 --coarse-size 256 --init content --iters "$ITERS" --refine-iters "$REFINE" --threads 2 \
      "${extra[@]}" > "$OUT/${photo}__${painting}.log"
    tail -n 2 "$OUT/${photo}__${painting}.log" | cut -c1-300
  done
done
nice "$BIN/examples/style_sheet" docs/images/style-sheet.png 240 "$SHARED/data/style/photos" \
  "$SHARED/data/style/paintings" "$OUT" "$PHOTOS" "$PAINTINGS"
