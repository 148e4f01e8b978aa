#!/usr/bin/env python3
"""One table from `visage device --check --json` and, where PyTorch with CUDA is installed, the
same Gatys iteration timed by PyTorch on the same card.

    python3 bench/gpu_report.py --visage part.json [--visage part2.json ...] [--repeat 10] [--json out.json]

The PyTorch iteration is the one Visage times: the ImageNet-normalised image through the network
up to its deepest style layer, the content cost at one layer and Gram-matrix style costs at five,
the backward pass to the pixels, and an Adam step on them. Networks have random weights (timing
does not depend on them). PyTorch is timed twice: with its defaults (TF32 tensor cores allowed in
convolutions) and in strict float32, which is what Visage computes.
"""

import argparse
import json
import statistics
import sys


def torch_gatys(network, side, repeat, tf32):
    import torch
    import torchvision

    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    dev = torch.device("cuda")
    if network == "VGG19":
        features = torchvision.models.vgg19(weights=None).features
        content, styles = 22, [1, 6, 11, 20, 29]
    else:
        features = torchvision.models.mobilenet_v2(weights=None).features
        content, styles = 7, [1, 3, 6, 10, 13]
    features = features.to(dev).eval()
    for p in features.parameters():
        p.requires_grad_(False)
    deepest = max([content] + styles)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

    def taps(x):
        out = {}
        h = (x - mean) / std
        for i, layer in enumerate(features):
            h = layer(h)
            if i in styles or i == content:
                out[i] = h
            if i == deepest:
                break
        return out

    def gram(f):
        _, c, h, w = f.shape
        f = f.view(c, h * w)
        return f @ f.t()

    with torch.no_grad():
        target = taps(torch.rand(1, 3, side, side, device=dev))
        content_target = target[content]
        grams = {i: gram(target[i]) for i in styles}
    image = torch.rand(1, 3, side, side, device=dev, requires_grad=True)
    opt = torch.optim.Adam([image], lr=0.02)

    def step():
        opt.zero_grad()
        f = taps(image)
        loss = 0.5 * ((f[content] - content_target) ** 2).sum()
        for i in styles:
            _, c, h, w = f[i].shape
            loss = loss + ((gram(f[i]) - grams[i]) ** 2).sum() / (4.0 * c * c * (h * w) ** 2)
        loss.backward()
        opt.step()
        with torch.no_grad():
            image.clamp_(0, 1)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visage", required=True, action="append",
                    help="output of visage device --check --json (one per part; repeatable)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json", help="also write the merged table here")
    args = ap.parse_args()
    report = {"parity": [], "timings": []}
    for path in args.visage:
        with open(path) as f:
            part = json.load(f)
        report["gpu"], report["cpu_threads"] = part["gpu"], part["cpu_threads"]
        report["parity"] += part["parity"]
        report["timings"] += part["timings"]

    torch_note = None
    try:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available to PyTorch")
        torch_note = f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}"
    except Exception as e:  # no PyTorch here: the table has Visage's columns only
        torch_note = None
        print(f"PyTorch not timed: {e}", file=sys.stderr)

    rows = []
    for t in report["timings"]:
        row = dict(t)
        what = t["what"]
        if torch_note and what.startswith("Gatys iteration"):
            _, network, size = [s.strip() for s in what.split(",")]
            side = int(size.split("x")[0])
            row["torch_seconds"] = torch_gatys(network, side, args.repeat, tf32=True)
            row["torch_fp32_seconds"] = torch_gatys(network, side, args.repeat, tf32=False)
        rows.append(row)

    ms = lambda s: "-" if s is None else f"{s * 1e3:.2f} ms"
    print(f"GPU: {report['gpu']}; CPU: {report['cpu_threads']} threads; {torch_note or 'no PyTorch'}\n")
    print("| parity test | measure | value | limit | result |")
    print("| --- | --- | --- | --- | --- |")
    for p in report["parity"]:
        value = "-" if p["value"] is None else f"{p['value']:.3e}"
        print(f"| {p['what']} | {p['measure']} | {value} | {p['limit']:.0e} | "
              f"{'pass' if p['passed'] else 'FAIL'} |")
    print("\n| benchmark | Visage GPU | Visage CPU | PyTorch (TF32) | PyTorch (fp32) | Visage / PyTorch (TF32, fp32) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = "-"
        if r.get("torch_fp32_seconds"):
            ratio = (f"{r['gpu_seconds'] / r['torch_seconds']:.1f}x, "
                     f"{r['gpu_seconds'] / r['torch_fp32_seconds']:.1f}x")
        extra = ""
        if r["what"].startswith("encode"):
            n = int(r["what"].split()[1])
            extra = f" ({n / r['gpu_seconds']:.0f} chips/s)"
        print(f"| {r['what']} | {ms(r['gpu_seconds'])}{extra} | {ms(r.get('cpu_seconds'))} | "
              f"{ms(r.get('torch_seconds'))} | {ms(r.get('torch_fp32_seconds'))} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": report["gpu"], "torch": torch_note, "parity": report["parity"],
                       "benchmarks": rows}, f, indent=1)
    return 0 if all(p["passed"] for p in report["parity"]) else 1


if __name__ == "__main__":
    sys.exit(main())
