#!/usr/bin/env python3
"""Makes tests/golden/sweep/<op>.jsonl: PyTorch's verdict (accepted, with y's shape, or refused)
on thousands of random layer configurations per op, for tests/test_api_sweep.c to replay
through convd's api layer. Shapes and parameters only, no tensor data: the test makes its own.

Every op of the family (conv1d, conv2d, conv3d, conv_transpose1d/2d/3d, each .forward and
.backward) gets COUNT configurations drawn with a fixed seed: tiny tensors, batched or not,
kernel sizes, strides, paddings (an integer, one per axis, a list of one, "same", "valid",
conv2d's four sides), dilations, groups, output_padding and padding_mode, each sometimes out of
PyTorch's range: zero or negative, beyond int32, lists of the wrong length or empty, groups not
dividing the channels, output_padding not below the stride or the dilation or given to a conv,
a padding_mode PyTorch does not have, reflect padding not below the input, circular padding
above it, "same" with a stride, channels, bias and dy of the wrong size, empty tensors, kernels
larger than the padded input.

The verdict is PyTorch's own, from torch.nn.functional (conv*, conv_transpose*, F.pad), the
torch.nn modules for padding_mode (nn.Conv*d pads x with F.pad, then convolves unpadded; its
constructor refuses "same" with a stride and every padding_mode of nn.ConvTranspose*d) and, for
backward ops, autograd (y.backward(dy)). Where PyTorch has no spelling of the request, the
reference is the PyTorch computation it stands for (docs/API.md, "Where convd differs"):
  - conv2d's four-sided padding [top, bottom, left, right]: F.pad(x, (left, right, top, bottom),
    mode) and the conv unpadded, as nn.Conv2d runs its own padding;
  - conv2d's [H, W] x (one image, one channel) with a [kh, kw] w: F.conv2d on x[None, None] and
    w[None, None], y squeezed back to [Ho, Wo];
  - an unbatched x: the same layer on x.unsqueeze(0), y squeezed, which is how PyTorch defines an
    unbatched convolution;
  - a padding_mode with stride, padding or dilation written as a list: read as F.conv* reads
    it, a list of one for every axis and a list of another length than the axes refused.
    nn.Conv*d hands the lists on unchecked: [p] reaches F.pad as one axis's padding (the last
    axis only, or a refusal with a batched x), "same" pads only as many axes as dilation has
    entries, and conv1d's padding [0, 6] pads its one axis by 6 on both sides.
  The unbatched reference is PyTorch's own verdict in every case but one: torch 1.13's
    circular F.pad refuses unbatched inputs ("Invalid padding size"), a limitation of that
    version's implementation (later versions pad them). The script asserts no other case differs.
The lines record PyTorch's verdict as computed, including where convd deliberately refuses what
PyTorch accepts (empty tensors, negative padding with a padding_mode other than zeros, which
F.pad reads as a crop): tests/test_api_sweep.c encodes those rules.

Each line is one JSON array:
  [x shape, w shape, b shape | null, stride, padding, dilation, groups, output_padding,
   padding_mode, dy shape | null, y shape | null]
where stride ... padding_mode are the request's values as sent (null: the field is left out;
output_padding null for conv ops) and the last entry is PyTorch's y shape when it accepts the
request (for a backward op, autograd accepted dy too), null when it refuses it.

Usage: /usr/bin/python3 tests/golden/make_sweep.py [OUT_DIR]   (default: sweep/ beside this script)
With SWEEP_REASONS=1 it also prints, per op, how often each of PyTorch's refusals was met.
The files are deterministic for a given torch version (1.13, Debian's python3-torch).
"""
import collections
import json
import os
import random
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

COUNT = 2000  # configurations per op
SEED = 15
FAMILIES = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
            "conv_transpose3d"]
MODES = ["zeros", "reflect", "replicate", "circular"]


def spatial_of(family):
    return int(family[-2])


def draw_param(rng, s, lo, hi, bad_values, wrong_length_chance=0.03, bad_chance=0.03):
    """An integer or a list (one per axis, sometimes a list of one, rarely of the wrong length),
    values in [lo, hi], rarely one of bad_values; None (left out) sometimes."""
    r = rng.random()
    if r < 0.15:
        return None
    values = [rng.randint(lo, hi) for _ in range(s)]
    if rng.random() < bad_chance:
        values[rng.randrange(s)] = rng.choice(bad_values)
    r = rng.random()
    if r < wrong_length_chance:
        length = rng.choice([n for n in (0, 2, 3, 4) if n != s])
        return [rng.randint(lo, hi) for _ in range(length)]
    if r < 0.4:
        return values[0]
    if r < 0.5:
        return [values[0]]
    return values


def axis_values(v, s, default):
    """Per-axis values of a parameter as sent, or None when PyTorch cannot read it per axis."""
    if v is None:
        return [default] * s
    if isinstance(v, int):
        return [v] * s
    if isinstance(v, str):
        return None
    if len(v) == 1:
        return v * s
    return list(v) if len(v) == s else None


def draw(rng, family, backward):
    s = spatial_of(family)
    transposed = family.startswith("conv_transpose")
    cfg = {}
    r = rng.random()
    groups = rng.choice([1, 1, 1, 2, 3]) if r < 0.9 else rng.choice([0, -1, 2, 3, 4, 2**31])
    cfg["groups"] = None if groups == 1 and rng.random() < 0.5 else groups
    g = groups if 1 <= groups <= 4 else 1
    n = rng.randint(1, 2)
    cin = g * rng.randint(1, 2)
    cout = g * rng.randint(1, 2)
    if r >= 0.9:  # groups drawn apart from the channels: may not divide them
        cin, cout = rng.randint(1, 4), rng.randint(1, 4)
    top = {1: 8, 2: 6, 3: 4}[s]
    sizes = [rng.randint(1, top) for _ in range(s)]
    kernel = [rng.randint(1, 4 if s < 3 else 3) for _ in range(s)]
    batched = rng.random() < 0.7
    plain = family == "conv2d" and rng.random() < 0.05  # x [H, W], w [kh, kw]
    if plain:
        cin = cout = 1
        batched = False
    if transposed:
        w_shape = [cin, cout // g] + kernel
    else:
        w_shape = [cout, cin // g] + kernel
    if rng.random() < 0.08:  # channels that do not match
        w_shape[rng.randrange(2)] += rng.choice([-1, 1])
        w_shape = [max(d, 1) for d in w_shape[:2]] + w_shape[2:]
    x_shape = ([n] if batched else []) + [cin] + sizes
    if plain:
        x_shape, w_shape = sizes, kernel
    if rng.random() < 0.02:  # a wrong rank of w
        w_shape = w_shape[:-1] if rng.random() < 0.5 else w_shape + [1]
    if rng.random() < 0.02:  # an empty tensor
        if rng.random() < 0.7:
            x_shape[rng.randrange(len(x_shape))] = 0
        else:
            w_shape[rng.randrange(len(w_shape))] = 0
    out_channels = 1 if plain else w_shape[1] * g if transposed else w_shape[0]
    if rng.random() < 0.5:
        b = [out_channels]
        if rng.random() < 0.06:
            b = rng.choice([[out_channels + 1], [max(out_channels - 1, 0) or 2],
                            [out_channels, 1]])
        cfg["b"] = b
    else:
        cfg["b"] = None
    cfg["x"], cfg["w"] = x_shape, w_shape

    # Beyond int32 (2^31, 2^40): PyTorch's conv takes them where they leave an output; its
    # transposed convs refuse them (their int32 stride reads 2^31 as negative, 2^40 as 0).
    cfg["stride"] = draw_param(rng, s, 1, 3, [0, -1, 2**31, 2**40])
    cfg["dilation"] = draw_param(rng, s, 1, 2 if rng.random() < 0.7 else 3, [0, -1, 2**31, 2**40])
    mode = "zeros"
    if not transposed and rng.random() < 0.45:
        mode = rng.choice(MODES[1:])
    elif transposed and rng.random() < 0.06:
        mode = rng.choice(MODES[1:])
    if rng.random() < 0.01:
        mode = "mirror"  # no padding_mode of PyTorch's
    cfg["padding_mode"] = None if mode == "zeros" and rng.random() < 0.7 else mode
    # Padding: larger values with a padding_mode, to cross the reflect and circular limits.
    top_pad = (max(sizes) + 1) if mode != "zeros" else 2 if transposed else 3
    r = rng.random()
    if not transposed and r < 0.14:
        padding = "same"
    elif not transposed and r < 0.2:
        padding = "valid"
    elif transposed and r < 0.02:
        padding = rng.choice(["same", "valid"])
    elif family == "conv2d" and r < 0.32:
        padding = [rng.randint(0, top_pad) for _ in range(4)]
        if rng.random() < 0.05:
            padding[rng.randrange(4)] = -1
    else:
        padding = draw_param(rng, s, 0, top_pad, [-1, -2])
    if padding == "same" and rng.random() < 0.6 and cfg["stride"] is not None:
        cfg["stride"] = None if rng.random() < 0.5 else 1  # mostly stride 1 with "same"
    cfg["padding"] = padding
    if transposed:
        strides = axis_values(cfg["stride"], s, 1) or [1] * s
        dilations = axis_values(cfg["dilation"], s, 1) or [1] * s
        if rng.random() < 0.15:
            cfg["output_padding"] = None
        else:
            # Below the larger of stride and dilation, sometimes up to it (out of range).
            most = 0 if rng.random() < 0.85 else 1
            ops = [rng.randint(0, min(max(st, d, 1), 4) - 1 + most)
                   for st, d in zip(strides, dilations)]
            if rng.random() < 0.03:
                ops[rng.randrange(s)] = -1
            r = rng.random()
            cfg["output_padding"] = (ops[0] if r < 0.3 else [ops[0]] if r < 0.35
                                     else ops[:1] + ops if r < 0.37 else ops)
    else:  # PyTorch's conv has no output_padding: passing one is refused
        cfg["output_padding"] = rng.randint(0, 1) if rng.random() < 0.03 else None
    cfg["dy"] = None
    return cfg


def arg(v):
    return tuple(v) if isinstance(v, list) else v


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSE_MODULE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def forward(family, cfg, x, w, b):
    """y as PyTorch computes it for the request (x batched when the request is)."""
    s = spatial_of(family)
    kw = {}
    for name in ("stride", "dilation"):
        if cfg[name] is not None:
            kw[name] = arg(cfg[name])
    groups = cfg["groups"] if cfg["groups"] is not None else 1
    mode = cfg["padding_mode"] or "zeros"
    padding = cfg["padding"]
    if cfg["output_padding"] is not None:  # conv ops: a TypeError, PyTorch's refusal
        kw["output_padding"] = arg(cfg["output_padding"])
    if family.startswith("conv_transpose"):
        if mode != "zeros":  # the module's constructor is PyTorch's verdict on padding_mode
            TRANSPOSE_MODULE[s](1, 1, 1, padding_mode=mode)
        if padding is not None:
            kw["padding"] = arg(padding)
        return TRANSPOSE[s](x, w, b, groups=groups, **kw)
    if isinstance(padding, list) and len(padding) == 4 and s == 2:
        top, bottom, left, right = padding
        xp = F.pad(x, (left, right, top, bottom), mode="constant" if mode == "zeros" else mode)
        return F.conv2d(xp, w, b, groups=groups, **kw)
    if mode == "zeros":
        if padding is not None:
            kw["padding"] = arg(padding)
        return CONV[s](x, w, b, groups=groups, **kw)
    # nn.Conv*d hands its lists on unchecked (module docstring): read them as F.conv* does.
    padding = padding[0] if isinstance(padding, list) and len(padding) == 1 else padding
    for name in ("stride", "dilation"):
        if isinstance(kw.get(name), tuple) and len(kw[name]) == 1:
            kw[name] = kw[name][0]
    if isinstance(padding, list) and len(padding) != s:
        raise ValueError("F.conv%dd takes padding as one integer or %d" % (s, s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
        m = MODULE[s](w.shape[1] * groups if w.dim() > 1 else 1, w.shape[0],
                      tuple(w.shape[2:]) if w.dim() == s + 2 else 1,
                      padding=arg(padding) if padding is not None else 0, groups=groups,
                      bias=b is not None, padding_mode=mode, dtype=torch.float64, **kw)
    m.weight = nn.Parameter(w)
    if b is not None:
        m.bias = nn.Parameter(b)
    return m(x)


REFUSED = (RuntimeError, ValueError, TypeError)
REASONS = collections.Counter()


def verdict(family, cfg, backward, as_sent):
    """y's shape, or None when PyTorch refuses. as_sent: run the unbatched request unbatched
    (else batched, unsqueezed, as the reference is defined)."""
    s = spatial_of(family)
    x_shape, w_shape = cfg["x"], cfg["w"]
    plain = family == "conv2d" and len(x_shape) == 2
    unbatched = len(x_shape) == s + 1
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(w_shape, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(cfg["b"], dtype=torch.float64, requires_grad=True) if cfg["b"] else None
    xr, wr = x, w
    if plain:
        xr, wr = x[None, None], (w[None, None] if w.dim() == 2 else w)
    elif unbatched and not as_sent:
        xr = x.unsqueeze(0)
    try:
        y = forward(family, cfg, xr, wr, b)
        if plain:
            y = y[0, 0] if y.dim() == 4 and y.shape[0] == 1 and y.shape[1] == 1 else y
            if y.dim() != 2:
                return None  # w gave more than one channel: not the [H, W] form
        elif unbatched and not as_sent:
            y = y.squeeze(0)
        if backward:
            y.backward(torch.zeros(cfg["dy"], dtype=torch.float64))
        return list(y.shape)
    except REFUSED as e:
        REASONS[str(e).split(",")[0].split("(")[0][:60]] += 1
        return None


def nominal_y(family, cfg):
    """A plausible y shape for dy when PyTorch refuses the forward (sizes at least 1)."""
    s = spatial_of(family)
    x = cfg["x"]
    if family == "conv2d" and len(x) == 2:
        return [max(d, 1) for d in x]
    lead = x[:-s]
    out_channels = cfg["w"][0] if cfg["w"] else 1
    return [max(d, 1) for d in lead[:-1]] + [max(out_channels, 1)] + [max(d, 1) for d in x[-s:]]


def make_op(rng, family, backward, stats):
    lines = []
    for _ in range(COUNT):
        cfg = draw(rng, family, backward)
        if backward:
            cfg["dy"] = verdict(family, cfg, False, False) or nominal_y(family, cfg)
            if rng.random() < 0.1:  # a dy of the wrong shape
                dy = list(cfg["dy"])
                if rng.random() < 0.15:
                    dy = dy[1:] if len(dy) > 2 else dy + [1]
                else:
                    i = rng.randrange(len(dy))
                    dy[i] = dy[i] + 1 if dy[i] == 1 or rng.random() < 0.5 else dy[i] - 1
                cfg["dy"] = dy
        y = verdict(family, cfg, backward, False)
        if len(cfg["x"]) == spatial_of(family) + 1 and not (family == "conv2d"
                                                           and len(cfg["x"]) == 2):
            raw = verdict(family, cfg, backward, True)
            if raw != y:
                assert raw is None and cfg["padding_mode"] == "circular", (family, cfg, raw, y)
                stats["unbatched circular (torch 1.13 refuses, batched accepts)"] += 1
        stats["accepted" if y is not None else "refused"] += 1
        lines.append([cfg["x"], cfg["w"], cfg["b"], cfg["stride"], cfg["padding"],
                      cfg["dilation"], cfg["groups"], cfg["output_padding"],
                      cfg["padding_mode"], cfg["dy"], y])
    return lines


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "sweep")
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for family in FAMILIES:
        for backward in (False, True):
            op = family + (".backward" if backward else ".forward")
            rng = random.Random(f"{SEED}:{op}")
            stats = collections.Counter()
            lines = make_op(rng, family, backward, stats)
            path = os.path.join(out, op + ".jsonl")
            with open(path, "w") as f:
                for line in lines:
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
            print(path, dict(stats))
            if os.environ.get("SWEEP_REASONS"):
                for reason, count in REASONS.most_common():
                    print("   ", count, reason)
            REASONS.clear()


if __name__ == "__main__":
    main()
