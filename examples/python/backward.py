#!/usr/bin/env python3
"""convd from Python (NumPy + requests): one conv2d backward pass three ways - v1 JSON,
v1 safetensors (written and read by hand in a few lines), and the Open Inference Protocol v2
with Triton's binary tensors - each checked against a NumPy reference computed here.

Usage: CONVD_URL=http://127.0.0.1:8080 python3 examples/python/backward.py
"""
import json
import os
import struct
import sys

import numpy as np
import requests

URL = os.environ.get("CONVD_URL", "http://127.0.0.1:8080")
STRIDE, PAD = 2, 1


def reference(x, w, dy, stride, pad):
    """dx, dw, db of y = conv2d(x, w, b) for upstream gradient dy, by direct summation."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dw += np.einsum("nf,nckl->fckl", dy[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nf,fckl->nckl", dy[:, :, i, j], w)
    return {"dx": dxp[:, :, pad:pad + h, pad:pad + wd], "dw": dw, "db": dy.sum(axis=(0, 2, 3))}


def to_safetensors(tensors, metadata):
    """Little-endian u64 header length, the JSON header, the tensors' bytes (float32)."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # so that every tensor starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def from_safetensors(body):
    (n,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "F64": "<f8"}
    tensors = {name: np.frombuffer(body[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
                                   dtype=dtypes[info["dtype"]]).reshape(info["shape"])
               for name, info in header.items()}
    return tensors, meta


def check(name, got, want):
    for key in ("dx", "dw", "db"):
        if not np.allclose(got[key], want[key], rtol=1e-4, atol=1e-4):
            sys.exit(f"FAIL {name} {key}: max error {np.abs(got[key] - want[key]).max()}")


def main():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    ho, wo = (9 + 2 * PAD - 3) // STRIDE + 1, (8 + 2 * PAD - 3) // STRIDE + 1
    dy = rng.standard_normal((2, 4, ho, wo)).astype(np.float32)
    want = reference(x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), STRIDE, PAD)

    # 1. v1 JSON: nested lists straight from NumPy.
    answer = requests.post(f"{URL}/v1/conv2d/backward", json={
        "x": x.tolist(), "w": w.tolist(), "b": b.tolist(), "dy": dy.tolist(),
        "stride": STRIDE, "padding": PAD})
    answer.raise_for_status()
    got = {k: np.array(v["data"]).reshape(v["shape"]) for k, v in answer.json().items() if k != "meta"}
    check("JSON", got, want)

    # 2. v1 safetensors: the tensors as bytes, the parameters in __metadata__ as JSON text.
    body = to_safetensors({"x": x, "w": w, "b": b, "dy": dy},
                          {"stride": str(STRIDE), "padding": str(PAD)})
    answer = requests.post(f"{URL}/v1/conv2d/backward", data=body,
                           headers={"Content-Type": "application/octet-stream"})
    answer.raise_for_status()
    got, meta = from_safetensors(answer.content)
    check("safetensors", got, want)
    assert meta["op"] == "conv2d.backward", meta

    # 3. Open Inference Protocol v2, Triton's binary extension: a JSON header, then raw bytes.
    inputs = {"x": x, "w": w, "b": b, "dy": dy}
    header = json.dumps({
        "id": "python-1",
        "parameters": {"stride_h": STRIDE, "stride_w": STRIDE, "pad_top": PAD, "pad_bottom": PAD,
                       "pad_left": PAD, "pad_right": PAD, "binary_data_output": True},
        "inputs": [{"name": k, "shape": list(v.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": v.nbytes}} for k, v in inputs.items()],
    }).encode()
    answer = requests.post(f"{URL}/v2/models/conv2d_backward/infer",
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
    check("v2 binary", got, want)
    assert result["id"] == "python-1", result

    print("python example: ok")


if __name__ == "__main__":
    main()
