#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/{json,safetensors,v2}) from what the
tests send: the golden requests (tests/golden, or $CONVD_GOLDEN_DIR, with the other families'
in its family/ folder as v2 seeds for their own models), the bad-request
catalog (tests/data/bad_requests.tsv), and the malformed-file shapes of
tests/test_safetensors.c and tests/test_v2.c. Each seed starts with the targets' selector byte
(fuzz/fuzz_*.c). Run from the repository root; the output is committed, so rerun it only when
the tests' inputs change.
"""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.environ.get("CONVD_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden"))
MAX_SEED = 8192  # the fuzzer's inputs stay small: golden cases above this are shrunk


def write(target, data):
    path = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def flat(t):
    """(shape, flat list) of a v1 tensor in either form."""
    if isinstance(t, dict):
        return t["shape"], t["data"]
    shape, values = [], t
    while isinstance(values, list):
        shape.append(len(values))
        values = values[0]
    out = t
    for _ in range(len(shape) - 1):
        out = [v for row in out for v in row]
    return shape, out


def safetensors(tensors, metadata, f64, align):
    header, offset, blobs = {"__metadata__": metadata} if metadata else {}, 0, []
    for name, (shape, data) in tensors.items():
        blob = struct.pack("<%d%s" % (len(data), "d" if f64 else "f"), *data)
        header[name] = {"dtype": "F64" if f64 else "F32", "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    if align:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def v2_request(tensors, params, f64, binary, outputs=None):
    inputs, blobs = [], []
    for name, (shape, data) in tensors.items():
        entry = {"name": name, "shape": shape, "datatype": "FP64" if f64 else "FP32"}
        if binary:
            blob = struct.pack("<%d%s" % (len(data), "d" if f64 else "f"), *data)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = data
        inputs.append(entry)
    body = {"id": "seed", "parameters": params, "inputs": inputs}
    if outputs:
        body["outputs"] = outputs
    text = json.dumps(body, separators=(",", ":")).encode()
    return text, b"".join(blobs)


def v2_params(request):
    """The v1 request's parameters as v2 scalars: a number under the field's own name, a list
    one per axis (suffixed d, h, w from the last; a list of one as the plain name), conv2d's
    four sides of padding as pad_top ... pad_right."""
    params = {}
    for key in ("stride", "dilation", "padding", "output_padding"):
        v = request.get(key)
        if isinstance(v, list) and len(v) == 4:
            params.update(zip(("pad_top", "pad_bottom", "pad_left", "pad_right"), v))
        elif isinstance(v, list) and len(v) > 1:
            params.update((key + "_" + "dhw"[3 - len(v) + a], n) for a, n in enumerate(v))
        elif v is not None:
            params[key] = v[0] if isinstance(v, list) else v
    for key in ("groups", "padding_mode"):
        if key in request:
            params[key] = request[key]
    return params


# The model selector of fuzz/fuzz_v2.c is (mode >> 2) % the op count, in api_ops' order
# (api/api_model.c): the backward op of each family.
BACKWARD_MODE = {"conv2d": 1, "conv1d": 3, "conv_transpose2d": 5, "conv_transpose1d": 7,
                 "conv3d": 9, "conv_transpose3d": 11}


def v2_family_seeds(case):
    """The other families' golden cases to their backward and forward models, as JSON."""
    request = case["request"]
    f64 = request.get("dtype") != "float32"
    tensors = {k: flat(request[k]) for k in ("x", "w", "b", "dy") if k in request}
    if sum(len(d) for _, d in tensors.values()) * (8 if f64 else 4) > MAX_SEED:
        return
    mode = BACKWARD_MODE[case["family"]] << 2
    text, _ = v2_request(tensors, v2_params(request), f64, False)
    write("v2", bytes([mode]) + text)
    fwd = {k: v for k, v in tensors.items() if k != "dy"}
    text, _ = v2_request(fwd, v2_params(request), f64, False)
    write("v2", bytes([mode - 4]) + text)


def main():
    family = os.path.join(GOLDEN, "family")
    for name in sorted(os.listdir(family)):
        v2_family_seeds(json.load(open(os.path.join(family, name))))
    for name in sorted(os.listdir(GOLDEN)):
        if not name.endswith(".json"):
            continue
        case = json.load(open(os.path.join(GOLDEN, name)))
        request = case["request"]
        text = json.dumps(request, separators=(",", ":")).encode()
        if len(text) <= MAX_SEED:
            write("json", b"\x02" + text)
        f64 = request.get("dtype") != "float32"
        tensors = {k: flat(request[k]) for k in ("x", "w", "b", "dy") if k in request}
        if sum(len(d) for _, d in tensors.values()) * (8 if f64 else 4) > MAX_SEED:
            continue
        meta = {k: json.dumps(request[k]) for k in ("stride", "padding", "dilation", "groups")
                if k in request}
        write("safetensors", b"\x00" + safetensors(tensors, meta, f64, True))
        write("safetensors", b"\x06" + safetensors(tensors, dict(meta, op="conv2d.backward"),
                                                   f64, False))
        fwd = {k: v for k, v in tensors.items() if k != "dy"}
        write("safetensors", b"\x01" + safetensors(fwd, meta, f64, True))
        params = v2_params(request)
        text, _ = v2_request(tensors, params, f64, False, [{"name": "dw"}, {"name": "dx"}])
        write("v2", b"\x04" + text)
        text, blob = v2_request(tensors, dict(params, binary_data_output=True), f64, True)
        write("v2", bytes([5]) + struct.pack("<H", len(text)) + text + blob)
        write("v2", bytes([6]) + struct.pack("<H", len(blob)) + text + blob)
        text, _ = v2_request(fwd, params, f64, False,
                             [{"name": "y", "parameters": {"binary_data": True}}])
        write("v2", b"\x00" + text)

    # The bad-request catalog: every mistake the JSON decoder names.
    for line in open(os.path.join(ROOT, "tests", "data", "bad_requests.tsv"), encoding="utf-8"):
        if line.startswith("#") or line.count("\t") < 3:
            continue
        body = line.rstrip("\n").split("\t", 3)[3].encode()
        write("json", b"\x00" + body)

    # Malformed files, as tests/test_safetensors.c and tests/test_v2.c build them.
    header = (b'{"x":{"dtype":"F32","shape":[1,1,2,2],"data_offsets":[0,16]},'
              b'"w":{"dtype":"F32","shape":[1,1,1,1],"data_offsets":[16,20]}}')
    data = b"\x00\x00\x80\x3f" * 5
    for n in (len(header), len(header) - 1, len(header) + 1, 1 << 32, 1 << 63, 100000001):
        write("safetensors", b"\x01" + struct.pack("<Q", n) + header + data)
    for text in (b"{}", b"[]", b' {"__metadata__":{"stride":2}}', b'{"__metadata__":{"x":"[1]"}}',
                 b'{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}' + b"\x00" * 4):
        write("safetensors", b"\x01" + struct.pack("<Q", len(text)) + text)
    v2 = (b'{"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"FP32",'
          b'"parameters":{"binary_data_size":16}},'
          b'{"name":"w","shape":[1,1,1,1],"datatype":"FP32","data":[3]}]}')
    for mode, number in ((1, len(v2)), (1, len(v2) + 17), (3, 5), (2, 16), (2, 15), (0, 0)):
        write("v2", bytes([mode]) + struct.pack("<H", number) + v2 + data[:16])
    write("v2", b'\x00{"error":{"code":"not_found","message":"m","path":"p"}}')


if __name__ == "__main__":
    sys.exit(main())
