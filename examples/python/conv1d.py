#!/usr/bin/env python3
"""convd from Python (NumPy + requests): a conv1d layer (stride 2, reflect padding 3,
dilation 2, two groups) forward and backward, as v1 JSON in float64 and through the Open
Inference Protocol v2 with Triton's binary tensors in float32, each checked against a NumPy
reference computed here: the padding as a matrix built by numpy.pad (so its transpose folds
the gradient of the padded cells back onto the cells they copy), then direct summation.

Usage: CONVD_URL=http://127.0.0.1:8080 python3 examples/python/conv1d.py
"""
import json
import os
import sys

import numpy as np
import requests

URL = os.environ.get("CONVD_URL", "http://127.0.0.1:8080")
STRIDE, PAD, DILATION, GROUPS, MODE = 2, 3, 2, 2, "reflect"


def reference(x, w, b, dy):
    """y, dx, dw, db of y = conv1d(pad(x), w, b) for upstream gradient dy; x (N, C, L)."""
    n, c, length = x.shape
    f, cg, k = w.shape
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}[MODE]
    pad = np.pad(np.eye(length), ((PAD, PAD), (0, 0)), mode=numpy_mode)  # (L + 2p, L)
    xp = np.einsum("ncl,pl->ncp", x, pad)
    lo = (xp.shape[2] - DILATION * (k - 1) - 1) // STRIDE + 1
    y = np.zeros((n, f, lo)) + b[None, :, None]
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    fg = f // GROUPS
    for o in range(lo):
        for tap in range(k):
            at = o * STRIDE + tap * DILATION
            for g in range(GROUPS):
                fs, cs = slice(g * fg, (g + 1) * fg), slice(g * cg, (g + 1) * cg)
                y[:, fs, o] += xp[:, cs, at] @ w[fs, :, tap].T
                if dy is not None:
                    dxp[:, cs, at] += dy[:, fs, o] @ w[fs, :, tap]
                    dw[fs, :, tap] += dy[:, fs, o].T @ xp[:, cs, at]
    grads = None if dy is None else {"dx": np.einsum("ncp,pl->ncl", dxp, pad), "dw": dw,
                                     "db": dy.sum(axis=(0, 2))}
    return y, grads


def check(name, got, want, tol):
    for key, value in want.items():
        error = np.abs(np.asarray(got[key]) - value).max()
        if error > tol * (1 + np.abs(value).max()):
            sys.exit(f"FAIL {name} {key}: max error {error}")


def main():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 17))
    w = rng.standard_normal((6, 4 // GROUPS, 3))
    b = rng.standard_normal(6)
    y, _ = reference(x, w, b, None)
    dy = rng.standard_normal(y.shape)
    _, grads = reference(x, w, b, dy)
    layer = {"stride": STRIDE, "padding": PAD, "dilation": DILATION, "groups": GROUPS,
             "padding_mode": MODE, "dtype": "float64"}

    # 1. v1 JSON, float64: forward, then backward (meta says how the layer was read).
    answer = requests.post(f"{URL}/v1/conv1d/forward",
                           json=dict(layer, x=x.tolist(), w=w.tolist(), b=b.tolist()))
    answer.raise_for_status()
    check("v1 forward", {"y": np.reshape(answer.json()["y"]["data"], y.shape)}, {"y": y}, 1e-12)
    answer = requests.post(f"{URL}/v1/conv1d/backward", json=dict(
        layer, x=x.tolist(), w=w.tolist(), b=b.tolist(), dy=dy.tolist()))
    answer.raise_for_status()
    body = answer.json()
    check("v1 backward", {k: np.reshape(v["data"], v["shape"]) for k, v in body.items()
                          if k != "meta"}, grads, 1e-12)
    meta = body["meta"]
    assert meta["stride"] == [STRIDE] and meta["padding"] == [PAD, PAD], meta

    # 2. Open Inference Protocol v2, float32 bytes after a JSON header. A 1-d model's
    #    parameters take their plain names: one axis, one integer each.
    inputs = {"x": x, "w": w, "b": b, "dy": dy}
    inputs = {k: v.astype("<f4") for k, v in inputs.items()}
    header = json.dumps({
        "parameters": {"stride": STRIDE, "padding": PAD, "dilation": DILATION, "groups": GROUPS,
                       "padding_mode": MODE, "binary_data_output": True},
        "inputs": [{"name": k, "shape": list(v.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": v.nbytes}} for k, v in inputs.items()],
    }).encode()
    answer = requests.post(f"{URL}/v2/models/conv1d_backward/infer",
                           data=header + b"".join(v.tobytes() for v in inputs.values()),
                           headers={"Inference-Header-Content-Length": str(len(header))})
    answer.raise_for_status()
    split = int(answer.headers["Inference-Header-Content-Length"])
    result, offset, got = json.loads(answer.content[:split]), split, {}
    for output in result["outputs"]:
        size = output["parameters"]["binary_data_size"]
        got[output["name"]] = np.frombuffer(answer.content[offset:offset + size],
                                            dtype="<f4").reshape(output["shape"])
        offset += size
    check("v2 binary", got, grads, 1e-4)
    assert result["parameters"]["pad_left"] == PAD, result["parameters"]

    print("python conv1d example: ok")


if __name__ == "__main__":
    main()
