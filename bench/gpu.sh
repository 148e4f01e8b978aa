#!/usr/bin/env bash
# GPU parity tests and benchmarks in one table, on a machine with an NVIDIA GPU.
#
#   bench/gpu.sh [OUT_DIR]
#
# Needs a `visage` built with `cargo build --release --features gpu` ($VISAGE, default
# target/release/visage), the dlib models ($VISAGE_MODELS), and optionally photos for real face
# chips ($GPU_IMAGES, space-separated). Sets up the Vulkan loader first: if the system lacks
# libvulkan.so.1 or libGLdispatch.so.0, the .deb files in $GL_DEBS (default .gl; `apt-get download
# libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0`) are unpacked into /; NVIDIA's ICD file is used where the container runtime mounts the driver.
# PyTorch, where installed, is timed on the same card for the Gatys iteration.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-out}
mkdir -p "$out"
visage=${VISAGE:-target/release/visage}

# NVIDIA's Vulkan driver (libGLX_nvidia) needs the Vulkan loader and libglvnd's dispatcher.
if ! ldconfig -p | grep -q 'libvulkan.so.1' || ! ldconfig -p | grep -q 'libGLdispatch.so.0'; then
    for deb in "${GL_DEBS:-.gl}"/*.deb; do dpkg -x "$deb" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/nvidia-smi.txt"
"$visage" device | tee "$out/devices.txt"
# Each part in its own process under its own time limit, so that a part that fails or hangs
# costs only its own results.
parts=()
for part in encodings training style-mobilenet style-vgg19; do
    echo "$part ..." >&2
    # shellcheck disable=SC2086
    timeout "${PART_TIMEOUT:-240}" "$visage" device --check --only "$part" --json \
        ${GPU_IMAGES:+--images $GPU_IMAGES} >"$out/$part.json" 2> >(tee "$out/$part.log" >&2) || status=$?
    [ -s "$out/$part.json" ] && parts+=(--visage "$out/$part.json")
done
python3 bench/gpu_report.py "${parts[@]}" --json "$out/table.json" | tee "$out/table.md" || status=$?
exit "${status:-0}"
