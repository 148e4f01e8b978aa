"""Times face_recognition (dlib) on the same steps `visage bench` times, and prints one JSON object.

Run by compare.sh inside a throwaway virtualenv; each call is its own process so that the peak
memory it reports is the peer's alone.
"""
import json
import resource
import statistics
import sys
import time

import face_recognition
import numpy as np


def median_time(repeat, step):
    step()  # warm-up, as visage bench does
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    path, repeat = sys.argv[1], int(sys.argv[2])
    image = face_recognition.load_image_file(path)
    boxes = face_recognition.face_locations(image, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        sys.exit(f"{path}: the peer found no face")
    largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    report = {
        "image": path,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "faces": len(boxes),
        "decode_ms": 1e3 * median_time(repeat, lambda: face_recognition.load_image_file(path)),
        "detect_ms": 1e3 * median_time(
            repeat, lambda: face_recognition.face_locations(image, 1, model="hog")),
        "encode_one_ms": 1e3 * median_time(
            repeat, lambda: face_recognition.face_encodings(image, [largest], 1, model="small")),
        "pipeline_ms": 1e3 * median_time(
            repeat, lambda: face_recognition.face_encodings(face_recognition.load_image_file(path))),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "numpy": np.__version__,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
