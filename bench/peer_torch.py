#!/usr/bin/python3
"""PyTorch's side of `make bench`: forward and backward (dx + dw + db) of every layer.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peer_torch.py LAYERS.json THREADS [IMPL]

LAYERS.json is `bench_conv layers` (the one definition of the suite). Prints one JSON line per
layer and pass, in the format of bench/benchlib.h (bench_emit_times), timed as the C benchmarks
are: BENCH_WARMUP untimed calls, then BENCH_REPEATS timed ones. Forward is F.conv1d, conv2d,
conv3d or conv_transpose2d under no_grad (y only); backward is aten.convolution_backward, the
single call autograd makes for dx, dw and db, so no autograd bookkeeping is timed. A
reflect-padded layer runs as nn.Conv2d(padding_mode="reflect") does: F.pad then the unpadded
conv forward; backward the conv's on the padded x (saved by autograd, not timed) and the pad's
(reflection_pad2d_backward). IMPL names the records (default "pytorch";
bench/run.sh runs it a second time under another name with glibc's default allocator).
"""
import ctypes
import json
import os
import re
import sys
import time

import torch
import torch.nn.functional as F


def env_int(name, fallback):
    try:
        n = int(os.environ.get(name, ""))
    except ValueError:
        return fallback
    return n if n > 0 else fallback


def openblas_core():
    """The OpenBLAS core the process loaded (torch links it as its BLAS), or None."""
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "blas" in line and ".so" in line}
    for path in sorted(libs):
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return None


def capability():
    m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    return m.group(1) if m else "?"


def measure(step, warmup, repeats):
    """Per repeat, the list of part times in ms that `step` returns."""
    for _ in range(warmup):
        step()
    return [step() for _ in range(repeats)]


def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def main():
    layers_path, threads = sys.argv[1], int(sys.argv[2])
    impl = sys.argv[3] if len(sys.argv) > 3 else "pytorch"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    warmup, repeats = env_int("BENCH_WARMUP", 3), env_int("BENCH_REPEATS", 11)
    with open(layers_path) as f:
        layers = json.load(f)
    extra = None
    for L in layers:
        op, reflect = L.get("op", "conv2d"), L.get("padding_mode") == "reflect"
        spatial = {"conv1d": 1, "conv3d": 3}.get(op, 2)
        transposed = op == "conv_transpose2d"
        # PyTorch's shapes: x (N, C, [D,] [H,] W), w (F, C/G, k...) or, transposed, (C, F/G, k...)
        sizes = {"d": L.get("d", 1), "h": L["h"], "w": L["w"]}
        ksizes = {"d": L.get("kd", 1), "h": L["kh"], "w": L["kw"]}
        osizes = {"d": L.get("do", 1), "h": L["ho"], "w": L["wo"]}
        axes = ["d", "h", "w"][3 - spatial:]
        stride, pad = [L["stride"]] * spatial, [L["pad"]] * spatial
        dilation, groups = [L["dilation"]] * spatial, L["groups"]
        x = torch.randn(L["n"], L["c"], *[sizes[a] for a in axes])
        w_in, w_out = (L["f"] // groups, L["c"]) if transposed else (L["c"] // groups, L["f"])
        w = torch.randn(w_out, w_in, *[ksizes[a] for a in axes])
        b = torch.randn(L["f"])
        dy = torch.randn(L["n"], L["f"], *[osizes[a] for a in axes])
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
        out_pad = [0] * spatial
        if reflect:
            # What nn.Conv2d(padding_mode="reflect") runs: F.pad, then an unpadded conv; its
            # backward is the conv's on the padded x that autograd saved, then the pad's.
            refl = [L["pad"]] * (2 * spatial)
            xp = F.pad(x, refl, mode="reflect")
            pad = [0] * spatial

            def forward_call():
                return conv(F.pad(x, refl, mode="reflect"), w, b, stride, pad, dilation, groups)

            def backward_call(mask):
                def run():
                    dxp, dw, db = torch.ops.aten.convolution_backward(
                        dy, xp, w, [L["f"]], stride, pad, dilation, False, out_pad, groups, mask)
                    if mask[0]:
                        torch.ops.aten.reflection_pad2d_backward(dxp, x, refl)
                    return dw, db
                return run
        else:
            def forward_call():
                if transposed:
                    return F.conv_transpose2d(x, w, b, stride, pad, out_pad, groups, dilation)
                return conv(x, w, b, stride, pad, dilation, groups)

            def backward_call(mask):
                return lambda: torch.ops.aten.convolution_backward(
                    dy, x, w, [L["f"]], stride, pad, dilation, transposed, out_pad, groups, mask)

        def forward():
            with torch.no_grad():
                return [timed(forward_call)]

        full = backward_call([True, True, True])
        only_dx = backward_call([True, False, False])
        only_dw_db = backward_call([False, True, True])

        def backward():
            # The pass is the one call; the split calls say where its time goes.
            return [timed(full), timed(only_dx), timed(only_dw_db)]

        if extra is None:  # after a first conv, once every library torch uses is loaded
            forward()
            extra = {"core": openblas_core(), "capability": capability(),
                     "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "mkldnn": torch.backends.mkldnn.is_available()}
        for pass_name, step in (("forward", forward), ("backward", backward)):
            samples = measure(step, warmup, repeats)
            rec = {"kind": "time", "impl": impl, "layer": L["name"], "pass": pass_name,
                   "threads": threads, "warmup": warmup, "ms": [s[0] for s in samples],
                   "parts": {}}
            if pass_name == "backward":
                rec["parts"] = {"dx": [s[1] for s in samples], "dw_db": [s[2] for s in samples]}
            rec.update(extra)
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
