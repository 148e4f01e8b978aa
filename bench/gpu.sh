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
# PyTorch, where installed, is timed on the same card for the Gatys iteration. Time limits (seconds):
# VGG_TIMEOUT per VGG19 part, PART_TIMEOUT per other part, GPU_BUDGET for all parts together.
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
# The NVIDIA driver keeps the pipelines it compiled on disk, so that a second run on the same
# machine skips the driver's compilation (cubecl's autotune results stay in memory: this build
# has no autotune persistence, so each part still tunes).
export __GL_SHADER_DISK_CACHE_PATH=${__GL_SHADER_DISK_CACHE_PATH:-$PWD/target/nvidia-shader-cache}
export __GL_SHADER_DISK_CACHE_SIZE=${__GL_SHADER_DISK_CACHE_SIZE:-4294967296}
export __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p "$__GL_SHADER_DISK_CACHE_PATH"

# Each part in its own process under its own time limit (seconds), so that a part that fails or
# hangs costs only its own results; on a fresh GPU most of a part's time is compiling and tuning
# kernels for each new shape, so VGG19 at 512 px (the goal's row) comes first and 1024 px last.
# GPU_BUDGET (seconds, optional) bounds all parts together: each later part gets what is left.
deadline=$(($(date +%s) + ${GPU_BUDGET:-100000}))
parts=()
while read -r label limit args; do
    left=$((deadline - $(date +%s)))
    if [ "$left" -lt 20 ]; then
        echo "$label: skipped, GPU_BUDGET spent" >&2
        continue
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    echo "$label (at most $limit s) ..." >&2
    # shellcheck disable=SC2086
    timeout "$limit" "$visage" device --check $args --json \
        ${GPU_IMAGES:+--images $GPU_IMAGES} </dev/null >"$out/$label.json" 2> >(tee "$out/$label.log" >&2) || status=$?
    [ -s "$out/$label.json" ] && parts+=(--visage "$out/$label.json")
done <<PARTS
style-vgg19-512 ${VGG_TIMEOUT:-240} --only style-vgg19 --sizes 512
encodings ${PART_TIMEOUT:-120} --only encodings
training ${PART_TIMEOUT:-120} --only training
style-mobilenet ${PART_TIMEOUT:-120} --only style-mobilenet --sizes 512,1024
style-vgg19-1024 ${VGG_TIMEOUT:-240} --only style-vgg19 --sizes 1024 --parity-iterations 0
PARTS
python3 bench/gpu_report.py "${parts[@]}" --json "$out/table.json" | tee "$out/table.md" || status=$?
exit "${status:-0}"
