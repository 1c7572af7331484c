#!/usr/bin/env python3
"""The OpenBLAS core inside the container: named by /v1/info, not one of OpenBLAS's generic
fallbacks, and a larger backward pass in both dtypes (GEMMs past the tiny golden cases) answered
as the native convd answers it, whatever core each picked.

usage: agree.py BASE_URL NATIVE_CONVD INFO_JSON
Closes with "agree: N passed, N failed".
"""
import json
import random
import subprocess
import sys
import urllib.request

GENERIC = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
           "Coppermine", "Northwood", "Banias", "Athlon", "Opteron", "Barcelona", "Bobcat",
           "Unknown"}
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def tensor(rng, shape):
    n = 1
    for s in shape:
        n *= s
    return {"shape": shape, "data": [round(rng.uniform(-1, 1), 3) for _ in range(n)]}


def main():
    base, native, info = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        passed, failed = passed + ok, failed + (not ok)

    blas = info.get("blas", {})
    check(blas.get("core") not in GENERIC | {None},
          f"OpenBLAS core in the container: {blas.get('core')} ({blas.get('core_source')})")
    rng = random.Random(7)
    for dtype in ("float32", "float64"):
        request = {"op": "conv2d.backward", "dtype": dtype, "padding": 1,
                   "x": tensor(rng, [4, 32, 20, 20]), "w": tensor(rng, [48, 32, 3, 3]),
                   "b": tensor(rng, [48]), "dy": tensor(rng, [4, 48, 20, 20])}
        body = json.dumps(request).encode()
        req = urllib.request.Request(f"{base}/v1/conv2d/backward", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            served = json.loads(resp.read())
        local = json.loads(subprocess.run([native, "run"], input=body, capture_output=True,
                                          check=True).stdout)
        for name in ("dx", "dw", "db"):
            a, b = served[name]["data"], local[name]["data"]
            scale = max(abs(v) for v in b) or 1.0
            worst = max(abs(x - y) for x, y in zip(a, b)) / scale
            check(len(a) == len(b) and worst <= TOLERANCE[dtype],
                  f"{dtype} {name}: container vs native convd, relative error {worst:.2g}")
    print(f"agree: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
