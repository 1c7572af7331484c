#!/usr/bin/env python3
"""convd from Python (NumPy + requests): a conv_transpose3d layer (upsampling a volume by
2 in depth and 3 in height and width, each axis its own padding and output_padding) forward
and backward, through the Open Inference Protocol v2 with Triton's binary tensors (float64)
and as v1 safetensors (float32), each checked against a NumPy reference computed here from
PyTorch's definition: every x[n, ci, i, j, k] scattered through the kernel onto
y[n, f, i*s_d + a - p_d, j*s_h + e - p_h, k*s_w + r - p_w].

Usage: CONVD_URL=http://127.0.0.1:8080 python3 examples/python/conv_transpose3d.py
"""
import json
import os
import struct
import sys

import numpy as np
import requests

URL = os.environ.get("CONVD_URL", "http://127.0.0.1:8080")
STRIDE, PAD, OUTPUT_PADDING = (2, 3, 3), (1, 0, 1), (1, 2, 0)


def reference(x, w, b, dy):
    """y and (dx, dw, db for upstream gradient dy) of conv_transpose3d; w (C, F, kd, kh, kw)."""
    n, c, *size = x.shape
    f, kernel = w.shape[1], w.shape[2:]
    out = [(size[a] - 1) * STRIDE[a] - 2 * PAD[a] + kernel[a] + OUTPUT_PADDING[a]
           for a in range(3)]
    # Scatter onto y padded by PAD on each side (and room for the kernel), then crop.
    full = np.zeros([n, f] + [out[a] + 2 * PAD[a] + kernel[a] for a in range(3)])
    for i, j, k in np.ndindex(*size):
        d0, h0, w0 = i * STRIDE[0], j * STRIDE[1], k * STRIDE[2]
        full[:, :, d0:d0 + kernel[0], h0:h0 + kernel[1], w0:w0 + kernel[2]] += np.einsum(
            "nc,cfabe->nfabe", x[:, :, i, j, k], w)
    crop = tuple(slice(PAD[a], PAD[a] + out[a]) for a in range(3))
    y = full[(slice(None), slice(None)) + crop] + b[None, :, None, None, None]
    if dy is None:
        return y, None
    # The adjoint: dy placed back in the padded frame, read through the same windows.
    dyp = np.zeros_like(full)
    dyp[(slice(None), slice(None)) + crop] = dy
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for i, j, k in np.ndindex(*size):
        d0, h0, w0 = i * STRIDE[0], j * STRIDE[1], k * STRIDE[2]
        window = dyp[:, :, d0:d0 + kernel[0], h0:h0 + kernel[1], w0:w0 + kernel[2]]
        dx[:, :, i, j, k] = np.einsum("nfabe,cfabe->nc", window, w)
        dw += np.einsum("nc,nfabe->cfabe", x[:, :, i, j, k], window)
    return y, {"dx": dx, "dw": dw, "db": dy.sum(axis=(0, 2, 3, 4))}


def check(name, got, want, tol):
    for key, value in want.items():
        error = np.abs(np.asarray(got[key]) - value).max()
        if error > tol * (1 + np.abs(value).max()):
            sys.exit(f"FAIL {name} {key}: max error {error}")


def v2_infer(model, inputs, parameters):
    """Triton's binary extension: the JSON header, then each input's bytes; binary outputs."""
    header = json.dumps({
        "parameters": dict(parameters, binary_data_output=True),
        "inputs": [{"name": k, "shape": list(v.shape), "datatype": "FP64",
                    "parameters": {"binary_data_size": v.nbytes}} for k, v in inputs.items()],
    }).encode()
    answer = requests.post(f"{URL}/v2/models/{model}/infer",
                           data=header + b"".join(v.astype("<f8").tobytes()
                                                  for v in inputs.values()),
                           headers={"Inference-Header-Content-Length": str(len(header))})
    answer.raise_for_status()
    split = int(answer.headers["Inference-Header-Content-Length"])
    result, offset, got = json.loads(answer.content[:split]), split, {}
    for output in result["outputs"]:
        size = output["parameters"]["binary_data_size"]
        got[output["name"]] = np.frombuffer(answer.content[offset:offset + size],
                                            dtype="<f8").reshape(output["shape"])
        offset += size
    return got


def safetensors(tensors, metadata):
    """Little-endian u64 header length, the JSON header, the tensors' bytes (float32)."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 3, 2, 4))
    w = rng.standard_normal((3, 2, 2, 3, 3))  # (C, F, kd, kh, kw)
    b = rng.standard_normal(2)
    y, _ = reference(x, w, b, None)
    dy = rng.standard_normal(y.shape)
    _, grads = reference(x, w, b, dy)

    # 1. v2, float64: one scalar per axis (d, h, w) for each parameter.
    parameters = {}
    for a, axis in enumerate("dhw"):
        parameters.update({f"stride_{axis}": STRIDE[a], f"padding_{axis}": PAD[a],
                           f"output_padding_{axis}": OUTPUT_PADDING[a]})
    check("v2 forward", v2_infer("conv_transpose3d_forward", {"x": x, "w": w, "b": b},
                                 parameters), {"y": y}, 1e-12)
    check("v2 backward", v2_infer("conv_transpose3d_backward",
                                  {"x": x, "w": w, "b": b, "dy": dy}, parameters), grads, 1e-12)

    # 2. v1 safetensors, float32: the lists in __metadata__ as JSON text; the answer's
    #    __metadata__ says the layer back, one number per axis.
    metadata = {"stride": json.dumps(STRIDE), "padding": json.dumps(PAD),
                "output_padding": json.dumps(OUTPUT_PADDING)}
    answer = requests.post(f"{URL}/v1/conv_transpose3d/backward",
                           data=safetensors({"x": x, "w": w, "b": b, "dy": dy}, metadata),
                           headers={"Content-Type": "application/octet-stream"})
    answer.raise_for_status()
    (n,) = struct.unpack("<Q", answer.content[:8])
    header = json.loads(answer.content[8:8 + n])
    meta = header.pop("__metadata__")
    got = {name: np.frombuffer(answer.content[8 + n + info["data_offsets"][0]:
                                              8 + n + info["data_offsets"][1]],
                               dtype="<f4").reshape(info["shape"])
           for name, info in header.items()}
    check("safetensors", got, grads, 1e-4)
    assert json.loads(meta["output_padding"]) == list(OUTPUT_PADDING), meta
    assert json.loads(meta["padding"]) == [p for p in PAD for _ in (0, 1)], meta

    print("python conv_transpose3d example: ok")


if __name__ == "__main__":
    main()
