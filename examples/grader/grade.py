#!/usr/bin/env python3
"""Grades a student's CS231n conv layer with convd, fully offline.

The student's module defines conv_backward_naive(dout, cache) -> (dx, dw, db) and usually
conv_forward_naive(x, w, b, conv_param) -> (out, cache), with conv_param = {"stride": s,
"pad": p}, in CS231n's layouts: x (N, C, H, W), w (F, C, HH, WW), b (F,). The forward output
is graded when there is a forward pass, and the backward pass runs on the cache the student's
own forward pass returned for the same inputs; without one (no forward pass, or it failed) on
the reference cache (x, w, b, conv_param), and the report says so.

convd makes the problems (`convd problem`: a suite built to expose the known mistakes,
bit-identical everywhere) and judges the answers (`convd check`: per tensor verdicts and a
diagnosis of the mistake), writing Gradescope's results.json. No network is needed.
"""
import argparse
import glob
import importlib.util
import json
import os
import re
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
    """fn(*args), stopped after `seconds` (a student's loop may never end). The alarm fires
    again every second after that, so that a bare `except:` in the student's loop cannot
    swallow it for good."""
    def expire(signum, frame):
        signal.alarm(1)
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


class NoAnswer(Exception):
    """What the student's code gave instead of an array, in words."""


# The most values an answer may have: far more than any suite's tensor, few enough that a
# runaway array cannot blow up the request to convd.
MAX_VALUES = 1 << 20


def answer(name, value):
    """A returned array as a convd tensor (NaN and infinities included, scalars and any rank:
    they are judged, not refused); NoAnswer when it is no array of numbers at all."""
    if value is None:
        raise NoAnswer("%s is None: your code does not compute it yet (the starter code's "
                       "`%s = None` is still there, or the function ends without a return)"
                       % (name, name))
    try:
        a = np.asarray(value, dtype=np.float64)
    except Exception as e:
        raise NoAnswer("%s is not an array of numbers (it is %s: %s)"
                       % (name, type(value).__name__, str(e).splitlines()[0] if str(e) else ""))
    if a.size > MAX_VALUES or a.ndim > 8:
        raise NoAnswer("%s has shape %s: far larger than this layer's answer, so it is not "
                       "graded" % (name, a.shape))
    return {"shape": list(a.shape), "data": a.ravel().tolist()}


# What commonly goes wrong, by the exception's type and message: (kind, test, hint). The
# first whose test accepts (type name, message, the student's line) explains it.
CAUSES = (
    ("time_limit", lambda t, m, l: t == "TimeLimit",
     "Your code did not finish in time. Look for a loop that never ends (a while loop whose "
     "counter is not advanced) or loops far larger than N, F, H_out, W_out."),
    ("numpy_alias_removed",
     lambda t, m, l: t == "AttributeError" and re.search(
         r"numpy' has no attribute '(float|int|bool|object|complex|str|long|unicode)'", m),
     "np.float, np.int, np.bool, np.object, ... were removed in NumPy 1.24: write float, "
     "int, bool (or np.float64, np.int64)."),
    ("python2_code",
     lambda t, m, l: (t == "SyntaxError" and "Missing parentheses" in m) or
     (t == "NameError" and re.search(r"'(xrange|unicode|raw_input|long|basestring)'", m)),
     "This is Python 2, the grader runs Python 3: print is a function (print(x)), range "
     "replaces xrange, and / always gives a float (// for whole numbers)."),
    ("syntax_error", lambda t, m, l: t in ("SyntaxError", "IndentationError", "TabError"),
     "Your file does not parse: fix the line shown (python3 -m py_compile yourfile.py finds "
     "it too)."),
    ("import_failed", lambda t, m, l: t in ("ModuleNotFoundError", "ImportError"),
     "Your file imports something the grader does not have: submit one self-contained file "
     "that needs only numpy (copy the helpers you use into it)."),
    ("stride_assert",
     lambda t, m, l: t == "AssertionError" and ("%" in l or "stride" in l or "divide" in m),
     "An assert that the stride divides H + 2*pad - HH evenly failed. CS231n's fast layers "
     "assert it, but a naive layer need not: H_out = 1 + (H + 2*pad - HH) // stride, and the "
     "rows after the last window get no gradient. Drop the assert (or grade with a suite "
     "whose strides divide evenly)."),
    ("assertion_failed", lambda t, m, l: t == "AssertionError",
     "An assert in your code failed on this layer: it assumes something the layer does not "
     "have (see the line). Grading layers have H != W, HH != WW, pad 0 or 2, stride 2 or 3."),
    ("window_shape_mismatch",
     lambda t, m, l: t == "ValueError" and "could not be broadcast" in m,
     "Two arrays of different shapes met, usually a window cut short at the edge of the "
     "padded input: your output is larger than the layer's (H_out = 1 + (H + 2*pad - HH) // "
     "stride, with // not round() or /, HH for the height and WW for the width), the padding "
     "is not `pad` on each side, or the window is not x_pad[n, :, i*stride:i*stride+HH, "
     "j*stride:j*stride+WW]."),
    ("unpacking_mismatch", lambda t, m, l: t == "ValueError" and "values to unpack" in m,
     "A tuple or shape of another length was unpacked: the cache is what your "
     "conv_forward_naive returned (x, w, b, conv_param), x is (N, C, H, W), w (F, C, HH, WW), "
     "and conv_backward_naive returns (dx, dw, db)."),
    # a float where an int belongs: as a size or range() bound, a slice's end, or an index
    # (NumPy raises IndexError for that one); not any TypeError naming float ("NoneType and
    # float" is the starter code's None)
    ("float_size",
     lambda t, m, l: t in ("TypeError", "IndexError") and re.search(
         r"'float' object cannot be interpreted as an integer|slice indices must be integers"
         r"|only integers, slices", m),
     "A size or an index is a float: in Python 3 / always gives one. Use // for H_out and "
     "W_out (int(...) if you must)."),
    ("still_none", lambda t, m, l: t == "TypeError" and "NoneType" in m,
     "A value is None where an array belongs: a variable still as the starter code leaves "
     "it (dx, dw, db = None, None, None), or a function of yours that ends without a return. "
     "Allocate before you index or add to it: dx = np.zeros_like(x), dw = np.zeros_like(w), "
     "db = np.zeros_like(b)."),
    ("index_out_of_range",
     lambda t, m, l: t == "IndexError" and re.search(r"out of bounds|out of range", m),
     "An index past the end of an array: check each loop's bound (i over H_out rows, j over "
     "W_out columns, not swapped, not H and W), and the window's start (i*stride, not "
     "i*stride + pad, in the padded input)."),
    # only conv_param's keys: a dict cache of the student's own misses keys of its own
    ("conv_param_key",
     lambda t, m, l: t == "KeyError" and ("conv_param" in l or
                                          re.fullmatch(r"'(stride|pad)\w*'", m)),
     "A key is missing: conv_param holds 'stride' and 'pad' only."),
    ("exited", lambda t, m, l: t == "SystemExit",
     "Your code called exit(): a graded function must return its answer."),
)


def explain(error, path):
    """(what happened, the student's line, kind, hint) for exception `error`."""
    kind_name = type(error).__name__
    # exit() and sys.exit() raise SystemExit with no message (its str() is "" or "None")
    full = "" if isinstance(error, SystemExit) and error.code is None else str(error).strip()
    what = "%s: %s" % (kind_name, full.splitlines()[0]) if full else kind_name
    where, line = "", ""
    if isinstance(error, SyntaxError) and error.filename == path:
        where, line = "line %s" % error.lineno, (error.text or "").strip()
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == path:
            where, line = "line %d" % frame.lineno, (frame.line or "").strip()
    for kind, test, hint in CAUSES:
        if test(kind_name, full, line):
            return what, where, line, kind, hint
    return (what, where, line, "raised",
            "Read the message and the line shown; run your function on this layer yourself.")


def describe(function, error, path):
    """The text a student reads for an exception of `function`: what happened, where, the
    likely cause with its usual fix, then the traceback of the student's frames."""
    what, where, line, kind, hint = explain(error, path)
    head = "%s raised %s" % (function, what)
    if where:
        head += "\n  at %s %s: %s" % (os.path.basename(path), where, line)
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    student = [l for l in lines if path in l]
    tail = "".join(lines[lines.index(student[0]):] if student else lines[-1:]).rstrip()
    tail = tail.replace(path, os.path.basename(path))  # the grader's directories are noise
    return "%s\n\nLikely cause (%s): %s\n\nTraceback (most recent call last):\n%s" % (
        head, kind, hint, tail)


def run_student(module, path, problem, time_limit):
    """The student's answers to one problem: a submission for convd check. Each tensor is
    judged on its own: what the code could not give gets a message saying what happened."""
    x, w, b, dout = (tensor(problem[k]) for k in ("x", "w", "b", "dy"))
    conv_param = {"stride": problem["stride"][0], "pad": problem["padding"][0]}
    submission, errors = {}, {}

    def take(name, value):
        tensor_name = "y" if name == "out" else name
        try:
            submission[tensor_name] = answer(name, value)
        except NoAnswer as e:
            errors[tensor_name] = str(e)

    # the backward pass runs on what the student's own forward pass cached for these inputs
    # (x padded, a tuple of its own making, ...); only when there is none, on the reference
    # cache (x, w, b, conv_param), and the report says so
    cache, note = None, None
    if hasattr(module, "conv_forward_naive"):
        try:
            result = call_limited(time_limit, module.conv_forward_naive, x.copy(), w.copy(),
                                  b.copy(), dict(conv_param))
            if isinstance(result, tuple) and len(result) == 2:
                take("out", result[0])
                cache = result[1]
            elif result is None:
                errors["y"] = ("conv_forward_naive returned None: it is not finished "
                               "(it must return (out, cache))")
            else:
                errors["y"] = ("conv_forward_naive returned %s, not the pair (out, cache)"
                               % type(result).__name__)
        except BaseException as e:
            errors["y"] = describe("conv_forward_naive", e, path)
        if cache is None:
            note = ("your conv_forward_naive gave no cache for this layer, so "
                    "conv_backward_naive ran on the reference cache (x, w, b, conv_param)")
    if cache is None:
        cache = (x.copy(), w.copy(), b.copy(), dict(conv_param))
    try:
        grads = call_limited(time_limit, module.conv_backward_naive, dout.copy(), cache)
        if isinstance(grads, (tuple, list)) and len(grads) == 3:
            for name, value in zip(("dx", "dw", "db"), grads):
                take(name, value)
        else:
            why = ("returned None: it is not finished" if grads is None else
                   "returned %s%s" % (type(grads).__name__, " of %d items" % len(grads)
                                      if isinstance(grads, (tuple, list)) else ""))
            for name in ("dx", "dw", "db"):
                errors[name] = "conv_backward_naive %s (it must return (dx, dw, db))" % why
    except BaseException as e:
        text = describe("conv_backward_naive", e, path)
        for name in ("dx", "dw", "db"):
            errors[name] = text
    if errors:
        submission["error"] = errors
    if note:
        submission["note"] = note
    return submission


def write_results(args, result):
    with open(args.results, "w") as f:
        json.dump(result, f)


def failure(args, message, started):
    """A result with no tests, saying why, in the platform's format."""
    if args.format == "prairielearn":
        result = {"gradable": True, "score": 0, "message": message, "output": message, "tests": []}
    else:
        result = {"score": 0, "execution_time": time.time() - started, "output": message,
                  "output_format": "md", "visibility": "visible", "tests": []}
    write_results(args, result)


def load(path, time_limit):
    """The student's module, imported with a time limit (top-level code runs too)."""
    spec = importlib.util.spec_from_file_location("student_layers", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    call_limited(time_limit, spec.loader.exec_module, module)
    return module


def grade(args, started):
    path = find_module(args.submission)
    if path is None:
        failure(args, "No file defines `conv_backward_naive`; submit %s."
                % " or ".join(MODULE_NAMES), started)
        return
    try:
        module = load(path, args.time_limit)
    except BaseException as e:
        failure(args, "Your file could not be imported, so nothing was graded (0 points):"
                "\n\n```\n%s\n```" % describe("importing " + os.path.basename(path), e, path),
                started)
        return
    if not callable(getattr(module, "conv_backward_naive", None)):
        failure(args, "Your file defines no function `conv_backward_naive`.", started)
        return

    served = convd(args.convd, ["problem", "--suite", args.suite, "--seed", str(args.seed)])
    cases = [{"name": p["name"], "problem": p["spec"],
              "submission": run_student(module, path, p["problem"], args.time_limit)}
             for p in served["problems"]]
    required = ["dx", "dw", "db"] + (["y"] if hasattr(module, "conv_forward_naive") else [])
    results = convd(args.convd, ["check"],
                    {"format": args.format, "output_format": args.output_format,
                     "require": required, "cases": cases})
    if args.format == "gradescope":
        results["execution_time"] = time.time() - started
    write_results(args, results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--convd", default="convd")
    parser.add_argument("--suite", default="cs231n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=int, default=10)
    parser.add_argument("--format", choices=("gradescope", "prairielearn"), default="gradescope")
    parser.add_argument("--output-format", choices=("md", "html"), default="md",
                        help="html: each failed test shows a heatmap of its wrong values")
    args = parser.parse_args()
    started = time.time()
    try:
        grade(args, started)
    except BaseException:
        # the grader itself failed (convd missing, a disk full, ...): still a results.json
        failure(args, "The autograder failed, not your code; tell the course staff:\n\n```\n%s\n```"
                % traceback.format_exc(), started)


if __name__ == "__main__":
    main()
