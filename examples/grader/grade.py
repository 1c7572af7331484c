#!/usr/bin/env python3
"""Grades a student's CS231n conv layer with convd, fully offline.

The student's module defines conv_backward_naive(dout, cache) -> (dx, dw, db), with
cache = (x, w, b, conv_param) and conv_param = {"stride": s, "pad": p}, in CS231n's layouts:
x (N, C, H, W), w (F, C, HH, WW), b (F,). When it also defines conv_forward_naive(x, w, b,
conv_param) -> (out, cache), the forward output is graded too.

convd makes the problems (`convd problem`: a suite built to expose the known mistakes,
bit-identical everywhere) and judges the answers (`convd check`: per tensor verdicts and a
diagnosis of the mistake), writing Gradescope's results.json. No network is needed.
"""
import argparse
import glob
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import traceback

import numpy as np

MODULE_NAMES = ("layers.py", "conv_layers.py", "conv.py")


def convd(program, args, request=None):
    """Runs `convd ARGS` with the JSON `request` on standard input; returns its JSON answer."""
    done = subprocess.run([program] + args, input=None if request is None else json.dumps(request),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("convd %s failed (exit %d): %s%s" % (
            " ".join(args), done.returncode, done.stdout.strip(), done.stderr.strip()))
    return json.loads(done.stdout)


def find_module(submission):
    """The student's file that defines conv_backward_naive."""
    for name in MODULE_NAMES:
        path = os.path.join(submission, name)
        if os.path.isfile(path):
            return path
    for path in sorted(glob.glob(os.path.join(submission, "**", "*.py"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            if "def conv_backward_naive" in f.read():
                return path
    return None


class TimeLimit(Exception):
    pass


def call_limited(seconds, fn, *args):
    """fn(*args), stopped after `seconds` (a student's loop may never end)."""
    def expire(signum, frame):
        raise TimeLimit("stopped after %d s: the call did not finish in time" % seconds)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return fn(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def tensor(t):
    return np.array(t["data"], dtype=np.float64).reshape(t["shape"])


def answer(name, value):
    """A returned array as a convd tensor (NaN and infinities included: they are counted)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError("%s is not an array of numbers (%s: %s)" % (name, type(value).__name__, e))
    return {"shape": list(a.shape), "data": a.ravel().tolist()}


def short_traceback():
    """The student's part of the traceback: the grader's own frames are noise to them."""
    lines = traceback.format_exc().splitlines()
    for i, line in enumerate(lines):
        if 'File "' in line and "grade.py" not in line:
            return "\n".join(["Traceback (most recent call last):"] + lines[i:])
    return "\n".join(lines)


def run_student(module, problem, time_limit):
    """The student's answers to one problem: a submission for convd check."""
    x, w, b, dout = (tensor(problem[k]) for k in ("x", "w", "b", "dy"))
    conv_param = {"stride": problem["stride"][0], "pad": problem["padding"][0]}
    submission, errors = {}, []
    if hasattr(module, "conv_forward_naive"):
        try:
            out, _ = call_limited(time_limit, module.conv_forward_naive, x.copy(), w.copy(),
                                  b.copy(), dict(conv_param))
            submission["y"] = answer("out", out)
        except Exception:
            errors.append("conv_forward_naive:\n" + short_traceback())
    try:
        # the reference cache, so that a mistake in the forward pass does not spill over
        cache = (x.copy(), w.copy(), b.copy(), dict(conv_param))
        grads = call_limited(time_limit, module.conv_backward_naive, dout.copy(), cache)
        if not isinstance(grads, (tuple, list)) or len(grads) != 3:
            raise TypeError("conv_backward_naive must return (dx, dw, db); it returned %s"
                            % type(grads).__name__)
        for name, value in zip(("dx", "dw", "db"), grads):
            submission[name] = answer(name, value)
    except Exception:
        errors.append("conv_backward_naive:\n" + short_traceback())
    if errors:
        submission["error"] = "\n\n".join(errors)
    return submission


def failure(args, message, started):
    """A result with no tests, saying why, in the platform's format."""
    if args.format == "prairielearn":
        result = {"gradable": True, "score": 0, "message": message, "output": message, "tests": []}
    else:
        result = {"score": 0, "execution_time": time.time() - started, "output": message,
                  "output_format": "md", "visibility": "visible", "tests": []}
    with open(args.results, "w") as f:
        json.dump(result, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--convd", default="convd")
    parser.add_argument("--suite", default="cs231n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=int, default=10)
    parser.add_argument("--format", choices=("gradescope", "prairielearn"), default="gradescope")
    args = parser.parse_args()
    started = time.time()

    path = find_module(args.submission)
    if path is None:
        failure(args, "No file defines `conv_backward_naive`; submit %s."
                % " or ".join(MODULE_NAMES), started)
        return
    try:
        spec = importlib.util.spec_from_file_location("student_layers", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))
        spec.loader.exec_module(module)
    except Exception:
        failure(args, "Your file could not be imported:\n\n```\n%s\n```"
                % short_traceback(), started)
        return

    served = convd(args.convd, ["problem", "--suite", args.suite, "--seed", str(args.seed)])
    cases = [{"name": p["name"], "problem": p["spec"],
              "submission": run_student(module, p["problem"], args.time_limit)}
             for p in served["problems"]]
    required = ["dx", "dw", "db"] + (["y"] if hasattr(module, "conv_forward_naive") else [])
    results = convd(args.convd, ["check"],
                    {"format": args.format, "require": required, "cases": cases})
    if args.format == "gradescope":
        results["execution_time"] = time.time() - started
    with open(args.results, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
