#!/usr/bin/env python3
"""Makes the golden cases of tests/golden/ with PyTorch (Debian's python3-torch): conv2d in
tests/golden/*.json, the other ops of the family (conv1d, conv3d, conv_transpose1d,
conv_transpose2d, conv_transpose3d, and conv2d with a padding_mode) in
tests/golden/family/*.json, whose files also carry "family" (the op's name before the dot).

Each case is one JSON file: {"name", "request": {v1 fields, x, w, b?, dy}, "expected": {y, dx,
dw, db?}}. The request's op is conv2d.backward; the forward case is the same request without dy
and with op conv2d.forward. Inputs are normal random numbers from a per-case seed. float64
cases are computed by torch in float64; float32 cases hold float32 inputs and the answers torch
computes from them in float64, rounded once to float32 (so they are the nearest float32 to the
exact answer, not one BLAS's float32 rounding).

Usage: /usr/bin/python3 tests/golden/make_golden.py [OUT_DIR]   (default: the folder of this script)
Run it again after changing CASES; the files are deterministic for a given torch version.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

# name, dtype, x shape, w shape, bias?, stride, padding, dilation, groups. A 4-sided padding
# [top, bottom, left, right] is applied with F.pad (conv2d itself takes only symmetric pairs).
CASES = [
    ("cs231n_forward", "float64", [2, 3, 4, 4], [3, 3, 4, 4], True, 2, 1, 1, 1),
    ("cs231n_backward", "float64", [4, 3, 5, 5], [2, 3, 3, 3], True, 1, 1, 1, 1),
    ("dilation2", "float64", [1, 2, 9, 8], [2, 2, 3, 3], True, 1, 2, 2, 1),
    ("float32_basic", "float32", [2, 3, 8, 8], [4, 3, 3, 3], True, 1, 1, 1, 1),
    ("groups2", "float64", [2, 4, 6, 6], [6, 2, 3, 3], True, 1, 1, 1, 2),
    ("seed_same_k2_even", "float64", [5, 6], [2, 2], False, 1, "same", 1, 1),
    ("seed_same_k3", "float64", [6, 7], [3, 3], False, 1, "same", 1, 1),
    ("stride2_pad0_leftover", "float64", [2, 2, 7, 6], [3, 2, 3, 2], True, 2, 0, 1, 1),
    ("per_axis_stride_padding_dilation", "float64", [1, 3, 11, 9], [4, 3, 3, 2], True,
     [2, 1], [1, 2], [1, 2], 1),
    ("depthwise_stride2", "float32", [2, 4, 9, 9], [4, 1, 3, 3], True, 2, 1, 1, 4),
    ("padding_four_sides", "float64", [1, 2, 6, 5], [3, 2, 3, 3], True, 1, [0, 2, 1, 0], 1, 1),
    ("one_by_one_stride2", "float32", [2, 8, 7, 7], [5, 8, 1, 1], False, 2, 0, 1, 1),
    ("one_image_chw", "float64", [3, 6, 6], [2, 3, 3, 3], True, 1, "valid", 1, 1),
    ("same_even_kernel_dilated", "float64", [1, 2, 8, 8], [2, 2, 4, 4], True, 1, "same", 2, 1),
    ("groups3_stride3_leftover", "float32", [1, 6, 10, 11], [9, 2, 2, 3], True, 3, 0, 1, 3),
]

# The other families (conv1d, conv3d, conv_transpose1d/2d/3d, conv2d with padding_mode): name, family, dtype, x shape, w shape
# (PyTorch's), bias?, stride, padding,
# dilation, groups, output_padding (transposed only), and optionally padding_mode (conv only:
# applied with F.pad, then the conv unpadded, as torch.nn.ConvNd does).
FAMILY_CASES = [
    ("conv1d_basic", "conv1d", "float64", [2, 3, 11], [4, 3, 3], True, 1, 1, 1, 1, None),
    ("conv1d_stride2_dilated", "conv1d", "float64", [1, 4, 17], [6, 2, 3], True, [2], [2], [2], 2,
     None),
    ("conv1d_same_even", "conv1d", "float32", [3, 3, 9], [5, 3, 4], False, 1, "same", 1, 1, None),
    ("conv1d_one_signal", "conv1d", "float64", [2, 7], [3, 2, 2], True, 3, 0, 1, 1, None),
    ("conv3d_basic", "conv3d", "float64", [2, 2, 4, 5, 4], [3, 2, 3, 3, 2], True, 1, 1, 1, 1,
     None),
    ("conv3d_strided_dilated_groups", "conv3d", "float64", [1, 4, 7, 6, 5], [4, 2, 2, 3, 2], True,
     [2, 1, 2], [1, 0, 1], [2, 1, 1], 2, None),
    ("conv3d_same_float32", "conv3d", "float32", [3, 5, 4, 6], [2, 3, 2, 3, 3], False, 1, "same",
     1, 1, None),
    ("conv2d_reflect", "conv2d", "float64", [2, 3, 5, 6], [4, 3, 3, 3], True, 1, [2, 1], 1, 1,
     None, "reflect"),
    ("conv2d_replicate_strided", "conv2d", "float64", [1, 2, 6, 5], [3, 2, 3, 2], True, [2, 1],
     [1, 3], [1, 2], 1, None, "replicate"),
    ("conv2d_circular_groups", "conv2d", "float32", [2, 4, 4, 5], [4, 2, 3, 3], True, 1, [4, 5], 1,
     2, None, "circular"),
    ("conv1d_reflect", "conv1d", "float64", [2, 2, 7], [3, 2, 4], True, 2, 3, 1, 1, None,
     "reflect"),
    ("conv3d_circular", "conv3d", "float64", [1, 2, 3, 4, 4], [2, 2, 2, 3, 3], True, 1, [1, 2, 1],
     1, 1, None, "circular"),
    ("conv3d_replicate_same", "conv3d", "float64", [2, 3, 4, 3], [2, 2, 3, 2, 3], False, 1, "same",
     1, 1, None, "replicate"),
    ("conv_transpose1d_output_padding", "conv_transpose1d", "float64", [2, 3, 6], [3, 2, 4], True,
     3, 1, 1, 1, 2),
    ("conv_transpose1d_groups_dilated", "conv_transpose1d", "float32", [4, 5], [4, 1, 3], True,
     [2], [2], [2], 2, [1]),
    ("conv_transpose3d_upsample", "conv_transpose3d", "float64", [1, 3, 2, 3, 3], [3, 2, 4, 4, 4],
     True, 2, 1, 1, 1, 0),
    ("conv_transpose3d_mixed", "conv_transpose3d", "float32", [4, 2, 3, 2], [4, 1, 2, 3, 2], True,
     [1, 2, 3], [0, 1, 1], [2, 1, 1], 2, [0, 1, 2]),
    ("conv_transpose2d_output_padding_dilation", "conv_transpose2d", "float64", [2, 2, 3, 4],
     [2, 3, 2, 3], True, [1, 2], [0, 1], [3, 2], 1, [2, 1]),
    ("conv_transpose1d_output_padding_dilation", "conv_transpose1d", "float64", [1, 2, 4],
     [2, 2, 3], True, 1, 1, 4, 1, 3),
    ("conv_transpose3d_output_padding_dilation", "conv_transpose3d", "float64", [1, 2, 2, 3, 2],
     [2, 1, 2, 2, 2], True, [1, 2, 1], [0, 0, 1], [3, 1, 2], 1, [2, 1, 1]),
    ("conv_transpose2d_upsample", "conv_transpose2d", "float64", [2, 4, 5, 5], [4, 3, 4, 4],
     True, 2, 1, 1, 1, 0),
    ("conv_transpose2d_output_padding", "conv_transpose2d", "float64", [1, 2, 4, 3],
     [2, 3, 3, 2], True, [3, 2], [1, 0], [1, 2], 1, [2, 1]),
    ("conv_transpose2d_groups", "conv_transpose2d", "float32", [2, 4, 3, 4], [4, 3, 3, 3], True,
     2, [0, 1], 1, 2, 1),
    ("conv_transpose2d_chw", "conv_transpose2d", "float64", [3, 4, 4], [3, 2, 2, 3], False, 1,
     [1, 2], [2, 1], 1, 0),
]


def tensor_json(t, dtype):
    """The v1 {"shape", "data"} form; float32 values print as the doubles they are."""
    values = t.detach().to(torch.float32 if dtype == "float32" else torch.float64)
    return {"shape": list(t.shape), "data": [float(v) for v in values.flatten().tolist()]}


def make_case(index, name, dtype, x_shape, w_shape, bias, stride, padding, dilation, groups):
    gen = torch.Generator().manual_seed(1000 + index)

    def normal(shape):
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
        return t.to(torch.float32).to(torch.float64) if dtype == "float32" else t

    x, w = normal(x_shape), normal(w_shape)
    b = normal([w_shape[0] if len(w_shape) == 4 else 1]) if bias else None
    # torch wants (N, C, H, W) or (C, H, W); a 2-D request is one image with one channel.
    x4 = x.reshape(1, 1, *x_shape) if len(x_shape) == 2 else x
    w4 = w.reshape(1, 1, *w_shape) if len(w_shape) == 2 else w
    x4 = x4.clone().requires_grad_(True)
    w4 = w4.clone().requires_grad_(True)
    b4 = b.clone().requires_grad_(True) if bias else None
    if isinstance(padding, list) and len(padding) == 4:
        top, bottom, left, right = padding
        y4 = F.conv2d(F.pad(x4, (left, right, top, bottom)), w4, b4, stride, 0, dilation, groups)
    else:
        torch_padding = tuple(padding) if isinstance(padding, list) else padding
        y4 = F.conv2d(x4, w4, b4, stride, torch_padding, dilation, groups)
    dy4 = normal(list(y4.shape))
    y4.backward(dy4)

    def as_request(t):  # back to the rank of the request
        return t.reshape(t.shape[-2:]) if len(x_shape) == 2 else t

    request = {"op": "conv2d.backward", "dtype": dtype, "stride": stride, "padding": padding,
               "dilation": dilation, "groups": groups,
               "x": tensor_json(x, dtype), "w": tensor_json(w, dtype)}
    if bias:
        request["b"] = tensor_json(b, dtype)
    request["dy"] = tensor_json(as_request(dy4), dtype)
    expected = {"y": tensor_json(as_request(y4), dtype),
                "dx": tensor_json(as_request(x4.grad), dtype),
                "dw": tensor_json(w4.grad.reshape(w_shape), dtype)}
    if bias:
        expected["db"] = tensor_json(b4.grad, dtype)
    return {"name": name, "request": request, "expected": expected}


def make_family_case(index, name, family, dtype, x_shape, w_shape, bias, stride, padding,
                     dilation, groups, output_padding, padding_mode="zeros"):
    gen = torch.Generator().manual_seed(2000 + index)

    def normal(shape):
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
        return t.to(torch.float32).to(torch.float64) if dtype == "float32" else t

    transposed = family.startswith("conv_transpose")
    out_channels = w_shape[1] * groups if transposed else w_shape[0]
    x = normal(x_shape).requires_grad_(True)
    w = normal(w_shape).requires_grad_(True)
    b = normal([out_channels]).requires_grad_(True) if bias else None

    def arg(v):
        return tuple(v) if isinstance(v, list) else v

    convs = {"conv1d": F.conv1d, "conv2d": F.conv2d, "conv3d": F.conv3d}
    if padding_mode != "zeros":
        axes = len(w_shape) - 2
        if padding == "same":
            pads = []
            for k, d in zip(w_shape[2:], [dilation] * axes if isinstance(dilation, int) else dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        else:
            each = [padding] * axes if isinstance(padding, int) else padding
            pads = [(p, p) for p in each]
        flat = [side for lo_hi in reversed(pads) for side in lo_hi]  # last axis first
        batched = len(x_shape) == axes + 2
        xb = x if batched else x.unsqueeze(0)
        y = convs[family](F.pad(xb, flat, mode=padding_mode), w, b, arg(stride), 0,
                          arg(dilation), groups)
        y = y if batched else y.squeeze(0)
    elif family in convs:
        y = convs[family](x, w, b, arg(stride), arg(padding), arg(dilation), groups)
    else:
        transpose = {"conv_transpose1d": F.conv_transpose1d, "conv_transpose2d": F.conv_transpose2d,
                     "conv_transpose3d": F.conv_transpose3d}[family]
        y = transpose(x, w, b, arg(stride), arg(padding), arg(output_padding), groups,
                      arg(dilation))
    dy = normal(list(y.shape))
    y.backward(dy)
    request = {"op": family + ".backward", "dtype": dtype, "stride": stride, "padding": padding,
               "dilation": dilation, "groups": groups}
    if transposed:
        request["output_padding"] = output_padding
    if padding_mode != "zeros":
        request["padding_mode"] = padding_mode
    request["x"] = tensor_json(x, dtype)
    request["w"] = tensor_json(w, dtype)
    if bias:
        request["b"] = tensor_json(b, dtype)
    request["dy"] = tensor_json(dy, dtype)
    expected = {"y": tensor_json(y, dtype), "dx": tensor_json(x.grad, dtype),
                "dw": tensor_json(w.grad, dtype)}
    if bias:
        expected["db"] = tensor_json(b.grad, dtype)
    return {"name": name, "family": family, "request": request, "expected": expected}


def write(path, case):
    with open(path, "w") as f:
        json.dump(case, f, separators=(",", ":"))
        f.write("\n")
    print(path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    torch.use_deterministic_algorithms(True)
    for index, case in enumerate(CASES):
        write(os.path.join(out, case[0] + ".json"), make_case(index, *case))
    os.makedirs(os.path.join(out, "family"), exist_ok=True)
    for index, case in enumerate(FAMILY_CASES):
        write(os.path.join(out, "family", case[0] + ".json"), make_family_case(index, *case))


if __name__ == "__main__":
    main()
