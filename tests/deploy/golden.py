#!/usr/bin/env python3
"""Sends every golden PyTorch case (forward and backward) to a running convd, wherever it runs
(a container, a pod, behind nginx), and compares the answers with PyTorch's numbers.

usage: golden.py BASE_URL [--key KEY] [--cacert PEM] [--golden DIR]
Prints one line per failure and closes with "golden: N passed, N failed"; exit 1 on any failure.
Standard library only, so it runs wherever python3 does.
"""
import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

# Relative to the largest expected magnitude, as tests/harness/http_harness.c does.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def flatten(tensor):
    """(shape, flat values) of a v1 tensor in either form."""
    if isinstance(tensor, dict):
        return list(tensor["shape"]), list(tensor["data"])
    shape, values = [], []

    def walk(v, depth):
        if isinstance(v, list):
            if depth == len(shape):
                shape.append(len(v))
            for item in v:
                walk(item, depth + 1)
        else:
            values.append(v)

    walk(tensor, 0)
    return shape, values


def close(got, want, tol):
    """None when got matches want, else what differs."""
    gs, gv = flatten(got)
    ws, wv = flatten(want)
    if gs != ws:
        return f"shape {gs} instead of {ws}"
    scale = max((abs(v) for v in wv), default=0.0) or 1e-300
    worst = max((abs(a - b) for a, b in zip(gv, wv)), default=0.0)
    return None if worst <= tol * scale else f"max error {worst:.3g} (largest value {scale:.3g})"


def post(url, body, key, context):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:300]
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_golden = os.environ.get("CONVD_GOLDEN_DIR") or os.path.join(
        here, "..", "golden")
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("--key", help="API key (sent as Authorization: Bearer)")
    ap.add_argument("--cacert", help="PEM certificate to trust for https://")
    ap.add_argument("--golden", default=default_golden)
    args = ap.parse_args()
    context = ssl.create_default_context(cafile=args.cacert) if args.cacert else None

    passed = failed = 0
    names = sorted(n for n in os.listdir(args.golden) if n.endswith(".json"))
    for name in names:
        with open(os.path.join(args.golden, name)) as f:
            case = json.load(f)
        request, expected = case["request"], case["expected"]
        tol = TOLERANCE[request.get("dtype", "float32")]
        forward = {k: v for k, v in request.items() if k not in ("dy", "op")}
        for route, body, outputs in (
            ("backward", request, ("dx", "dw", "db")),
            ("forward", forward, ("y",)),
        ):
            status, answer = post(f"{args.base_url}/v1/conv2d/{route}", body, args.key, context)
            problems = [f"status {status}: {answer}"] if status != 200 else []
            for out in outputs if status == 200 else ():
                if out not in expected:
                    continue
                if out not in answer:
                    problems.append(f"{out} missing")
                elif (why := close(answer[out], expected[out], tol)):
                    problems.append(f"{out}: {why}")
            if problems:
                failed += 1
                print(f"FAIL {name} {route}: {'; '.join(problems)}")
            else:
                passed += 1
    if len(names) < 8:
        failed += 1
        print(f"FAIL only {len(names)} golden cases in {args.golden}")
    print(f"golden: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
