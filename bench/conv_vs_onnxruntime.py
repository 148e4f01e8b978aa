"""Times single 3x3 convolutions in ONNX Runtime, as the other half of conv_vs_onnxruntime.sh.

Face ResNet: dlib's face-recognition architecture (the same 29 convolutions, pooling, zero-padded
residual additions and the final 256x128 matrix) with random weights, on 16 chips: timing does not
depend on the weight values, and dlib's model has no ONNX export.

Forward: one Conv node (C -> C channels, stride 1, padding 1, bias), batch 1.
Forward + input gradient: that Conv node plus a ConvTranspose node with the same weights on an
output-shaped tensor (the gradient of a stride-1 convolution with respect to its input), in one
graph. Prints one JSON object per measurement: best of `--reps` runs, milliseconds and GFLOP/s.
"""

import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def conv_model(c: int, hw: int, with_dgrad: bool) -> bytes:
    rng = np.random.default_rng(1)
    w = (rng.random((c, c, 3, 3), dtype=np.float32) - 0.5)
    b = (rng.random((c,), dtype=np.float32) - 0.5)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, hw, hw])]
    if with_dgrad:
        nodes.append(helper.make_node("ConvTranspose", ["dy", "W"], ["dx"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        inputs.append(helper.make_tensor_value_info("dy", TensorProto.FLOAT, [1, c, hw, hw]))
        outputs.append(helper.make_tensor_value_info("dx", TensorProto.FLOAT, [1, c, hw, hw]))
    graph = helper.make_graph(nodes, "conv", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def face_resnet_model(batch: int):
    """dlib's face ResNet as an ONNX graph; returns (model bytes, FLOPs of its convolutions)."""
    rng = np.random.default_rng(2)
    nodes, inits, flops = [], [], [0.0]
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def const(array):
        n = name("c")
        inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def conv(x, cin, cout, k, stride, hw_out, relu):
        w = (rng.standard_normal((cout, cin, k, k)) * (2.0 / (cin * k * k)) ** 0.5).astype(np.float32)
        b = np.zeros(cout, np.float32)
        pad = k // 2 if stride == 1 else 0  # dlib pads only stride-1 layers
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, const(w), const(b)], [y], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[pad] * 4))
        flops[0] += 2.0 * batch * cout * hw_out * hw_out * cin * k * k
        if relu:
            r = name("relu")
            nodes.append(helper.make_node("Relu", [y], [r]))
            return r
        return y

    def pad(x, channels=0, spatial=0):
        y = name("pad")
        pads = const(np.array([0, 0, 0, 0, 0, channels, spatial, spatial], np.int64))
        nodes.append(helper.make_node("Pad", [x, pads], [y]))
        return y

    def add_relu(a, b):
        s, r = name("add"), name("relu")
        nodes.append(helper.make_node("Add", [a, b], [s]))
        nodes.append(helper.make_node("Relu", [s], [r]))
        return r

    def ares(x, c, hw):
        h = conv(x, c, c, 3, 1, hw, True)
        return add_relu(conv(h, c, c, 3, 1, hw, False), x)

    def ares_down(x, cin, cout, hw):
        block_hw, pool_hw = (hw - 3) // 2 + 1, (hw - 2) // 2 + 1
        h = conv(x, cin, cout, 3, 2, block_hw, True)
        h = conv(h, cout, cout, 3, 1, block_hw, False)
        if block_hw < pool_hw:  # dlib adds the smaller map into the top-left corner
            h = pad(h, spatial=pool_hw - block_hw)
        p = name("pool")
        nodes.append(helper.make_node("AveragePool", [x], [p], kernel_shape=[2, 2], strides=[2, 2]))
        if cout > cin:  # the shortcut lacks the new channels: they get the block output alone
            p = pad(p, channels=cout - cin)
        return add_relu(h, p), pool_hw

    x = conv("x", 3, 32, 7, 2, 72, True)
    m = name("maxpool")
    nodes.append(helper.make_node("MaxPool", [x], [m], kernel_shape=[3, 3], strides=[2, 2]))
    x, hw, c = m, 35, 32
    for cout, repeats in [(32, 3), (64, 3), (128, 2), (256, 2), (256, 0)]:
        if cout != c or cout == 256 and repeats == 0:
            x, hw = ares_down(x, c, cout, hw)
            c = cout
        for _ in range(repeats):
            x = ares(x, c, hw)
    g, f = name("gap"), name("flat")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [g]))
    nodes.append(helper.make_node("Flatten", [g], [f]))
    fc = (rng.standard_normal((256, 128)) / 16).astype(np.float32)
    nodes.append(helper.make_node("MatMul", [f, const(fc)], ["y"]))
    graph = helper.make_graph(nodes, "face_resnet",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 150, 150])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 128])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString(), flops[0]


def best_ms(sess, feeds, reps: int) -> float:
    sess.run(None, feeds)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    rng = np.random.default_rng(3)
    for c, hw in [(64, 256), (128, 128), (512, 32)]:
        flops = 2.0 * c * hw * hw * c * 9
        x = rng.random((1, c, hw, hw), dtype=np.float32) - 0.5
        dy = rng.random((1, c, hw, hw), dtype=np.float32) - 0.5
        for case, dgrad in [("conv2d_fwd", False), ("conv2d_fwd_dgrad", True)]:
            sess = ort.InferenceSession(conv_model(c, hw, dgrad), opts, providers=["CPUExecutionProvider"])
            feeds = {"x": x, "dy": dy} if dgrad else {"x": x}
            ms = best_ms(sess, feeds, args.reps)
            total = flops * (2 if dgrad else 1)
            print(json.dumps({"case": case, "shape": f"{c}ch@{hw}x{hw}", "ms": round(ms, 3),
                              "gflops": round(total / ms / 1e6, 2), "ort": ort.__version__}), flush=True)
    model, flops = face_resnet_model(16)
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    chips = rng.random((16, 3, 150, 150), dtype=np.float32) - 0.5
    ms = best_ms(sess, {"x": chips}, args.reps)
    print(json.dumps({"case": "face_resnet_b16", "shape": "16x3x150x150", "ms": round(ms, 3),
                      "gflops": round(flops / ms / 1e6, 2), "gflop_per_chip": round(flops / 16 / 1e9, 3),
                      "ort": ort.__version__}), flush=True)


if __name__ == "__main__":
    main()
