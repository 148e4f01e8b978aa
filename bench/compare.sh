#!/usr/bin/env bash
# Side-by-side benchmark of Visage and face_recognition (dlib) on this machine, in one run.
# Installs the peer into a throwaway virtualenv (.venv-peer, git-ignored) from the package
# registry, makes a 500x500 and a 1920x1080 photo from a shared golden photo, times both tools
# on each in separate processes, and prints the ratios peer/Visage.
#
#   bench/compare.sh [REPEAT]        (VISAGE_SHARED defaults to ../shared beside the repo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${VISAGE_SHARED:-$root/../shared}
repeat=${1:-5}
venv=$root/.venv-peer
out=$root/bench-out
mkdir -p "$out"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import face_recognition' 2>/dev/null; then
  echo "installing the peer (dlib-bin, face_recognition) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q dlib-bin Pillow numpy Click
  "$venv/bin/pip" install -q --no-deps face_recognition face_recognition_models
fi
cargo build --release -q -p visage-cli
visage=$root/target/release/visage

"$venv/bin/python" "$root/bench/make_inputs.py" "$shared/golden/dlib/images/examples__obama-720p.jpg" "$out"
for name in photo_500x500 photo_1920x1080; do
  "$venv/bin/python" "$root/bench/peer_bench.py" "$out/$name.jpg" "$repeat" >"$out/$name.peer.json"
  "$visage" bench --json --repeat "$repeat" --models "$shared/models" "$out/$name.jpg" >"$out/$name.visage.json"
done
"$venv/bin/python" "$root/bench/report.py" "$out"
