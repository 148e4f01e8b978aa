"""Times single 3x3 convolutions in ONNX Runtime, as the other half of conv_vs_onnxruntime.sh.

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


if __name__ == "__main__":
    main()
