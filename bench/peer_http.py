#!/usr/bin/python3
"""The Python peer of bench/load_http.sh: what a TA would write instead of convd.

Python's ThreadingHTTPServer (HTTP/1.1 keep-alive) answering the same v1 JSON requests with
PyTorch's conv2d and autograd, in the same response format. Also writes the benchmark's request
bodies (--make-bodies DIR), so both servers get byte-identical requests.

usage: peer_http.py [--port P] [--threads T]     serve (port 0: a free one, printed on stdout)
       peer_http.py --make-bodies DIR            write DIR/seed_forward.json, DIR/layer_c_backward.json
"""
import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tensor(value, torch, dtype):
    if isinstance(value, dict):
        return torch.tensor(value["data"], dtype=dtype).reshape(value["shape"])
    return torch.tensor(value, dtype=dtype)


def as_json(t):
    return {"shape": list(t.shape), "data": t.detach().flatten().tolist()}


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def compute(op, req, torch):
    """One v1 request (4-D tensors; the benchmark sends only those)."""
    dtype = torch.float64 if req.get("dtype") == "float64" else torch.float32
    x = tensor(req["x"], torch, dtype)
    w = tensor(req["w"], torch, dtype)
    b = tensor(req["b"], torch, dtype) if "b" in req else None
    pad = req.get("padding", 0)
    padding = pad if isinstance(pad, str) else pair(pad)
    args = dict(stride=pair(req.get("stride", 1)), padding=padding,
                dilation=pair(req.get("dilation", 1)), groups=req.get("groups", 1))
    if op == "conv2d.forward":
        with torch.no_grad():
            return {"y": as_json(torch.nn.functional.conv2d(x, w, b, **args))}
    x.requires_grad_(True)
    w.requires_grad_(True)
    if b is not None:
        b.requires_grad_(True)
    y = torch.nn.functional.conv2d(x, w, b, **args)
    y.backward(tensor(req["dy"], torch, dtype))
    out = {"dx": as_json(x.grad), "dw": as_json(w.grad)}
    if b is not None:
        out["db"] = as_json(b.grad)
    return out


def serve(port, threads):
    import torch
    torch.set_num_threads(threads)
    ops = {"/v1/conv2d/forward": "conv2d.forward", "/v1/conv2d/backward": "conv2d.backward"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            start = time.perf_counter()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            op = ops.get(self.path)
            try:
                if op is None:
                    raise KeyError(self.path)
                out = compute(op, json.loads(body), torch)
                out["meta"] = {"op": op, "elapsed_ms": (time.perf_counter() - start) * 1e3}
                status, data = 200, json.dumps(out).encode()
            except Exception as e:  # the peer's whole error model
                status = 404 if op is None else 400
                data = json.dumps({"error": {"code": "bad_request", "message": str(e)}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"peer_http listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def make_bodies(directory):
    """The benchmark's requests: float32 tensors as numpy's tolist() prints them."""
    import numpy as np
    rng = np.random.default_rng(0)

    def t(*shape):
        return rng.standard_normal(shape).astype(np.float32).tolist()

    seed = {"dtype": "float32", "x": t(1, 1, 32, 32), "w": t(1, 1, 3, 3), "padding": "same"}
    layer_c = {"dtype": "float32", "x": t(8, 256, 14, 14), "w": t(256, 256, 3, 3),
               "b": t(256), "dy": t(8, 256, 14, 14), "padding": 1}
    os.makedirs(directory, exist_ok=True)
    for name, req in (("seed_forward", seed), ("layer_c_backward", layer_c)):
        with open(os.path.join(directory, name + ".json"), "w") as f:
            json.dump(req, f, separators=(",", ":"))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--make-bodies")
    a = p.parse_args()
    if a.make_bodies:
        make_bodies(a.make_bodies)
    else:
        serve(a.port, a.threads)
