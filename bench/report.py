"""Prints the side-by-side table of compare.sh from the JSON files it wrote."""
import json
import os
import platform
import sys

out = sys.argv[1]


def load(name, tool):
    with open(os.path.join(out, f"{name}.{tool}.json")) as f:
        return json.load(f)


rows = []
small_p, small_v = load("photo_500x500", "peer"), load("photo_500x500", "visage")
big_p, big_v = load("photo_1920x1080", "peer"), load("photo_1920x1080", "visage")
rows.append(("detect 500x500 (upsample 1)", small_p["detect_ms"], small_v["detect_ms"]))
rows.append(("detect 1920x1080 (upsample 1)", big_p["detect_ms"], big_v["detect_ms"]))
rows.append(("encode one face", small_p["encode_one_ms"], small_v["encode_one_ms"]))
rows.append(("whole pipeline 500x500", small_p["pipeline_ms"], small_v["pipeline_ms"]))
rows.append(("whole pipeline 1920x1080", big_p["pipeline_ms"], big_v["pipeline_ms"]))

print(f"machine: {platform.machine()}, {os.cpu_count()} cores; times are medians in ms")
print(f"{'step':32} {'peer':>10} {'visage':>10} {'peer/visage':>12}")
for label, peer, visage in rows:
    print(f"{label:32} {peer:10.1f} {visage:10.1f} {peer / visage:11.2f}x")
for label, p, v in (("peak memory 500x500 (MB)", small_p, small_v),
                    ("peak memory 1920x1080 (MB)", big_p, big_v)):
    print(f"{label:32} {p['peak_rss_mb']:10.0f} {v['peak_rss_mb']:10.0f} {p['peak_rss_mb'] / v['peak_rss_mb']:11.2f}x")
print(f"visage: batched encoding {small_v['encode_per_face_batch16_ms']:.1f} ms a face "
      f"(batch 16), model loading {small_v['load_models_ms']:.0f} ms (manifest check included)")
