"""A CS231n conv layer (naive loops) with the mistakes students make, one at a time.

Without MISTAKE in the environment this is a correct solution. With MISTAKE=<id> it makes the
mistake convd diagnoses under that id (or, with loop_past_the_end, raises an IndexError); the
grader's tests run it once per mistake and check that the diagnosis names it. The mistakes that CS231n's conv_param cannot express (a stride
or dilation per axis) are tested in C, tests/test_grade.c.
"""
import os

import numpy as np

MISTAKE = os.environ.get("MISTAKE", "")


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kernel = w[:, :, ::-1, ::-1] if MISTAKE == "kernel_flipped_in_forward" else w
    bias = np.zeros_like(b) if MISTAKE == "bias_missing" else b
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * kernel[f]) + bias[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    step = 1 if MISTAKE == "stride_ignored" else stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros((C, F, HH, WW)) if MISTAKE == "weight_channels_swapped" else np.zeros_like(w)
    db = np.zeros_like(b)
    # one column too many: an IndexError, which the grader reports instead of an answer
    columns = W_out + 1 if MISTAKE == "loop_past_the_end" else W_out
    for n in range(N):
        if MISTAKE == "not_summed_over_batch":
            dw = np.zeros_like(w)  # restarted for every image: only the last one is kept
        for f in range(F):
            for i in range(H_out):
                for j in range(columns):
                    rows = slice(i * step, i * step + HH)
                    cols = slice(j * step, j * step + WW)
                    g = dout[n, f, i, j]
                    window = x_pad[n, :, rows, cols]
                    if MISTAKE == "contributions_overwritten":
                        dx_pad[n, :, rows, cols] = w[f] * g
                        dw[f] = window * g
                        db[f] = g
                        continue
                    if MISTAKE == "kernel_not_flipped_in_dx":
                        dx_pad[n, :, rows, cols] += w[f, :, ::-1, ::-1] * g
                    else:
                        dx_pad[n, :, rows, cols] += w[f] * g
                    if MISTAKE == "dw_flipped":
                        dw[f] += window[:, ::-1, ::-1] * g
                    elif MISTAKE == "weight_channels_swapped":
                        dw[:, f] += window * g
                    elif MISTAKE == "sign_flipped":
                        dw[f] -= window * g
                    else:
                        dw[f] += window * g
                    db[f] += g
    if MISTAKE == "dx_padding_not_cropped":
        dx = dx_pad
    elif MISTAKE == "dx_cropped_to_empty":
        dx = dx_pad[:, :, pad:-pad, pad:-pad]
    elif MISTAKE == "dx_crop_fixed_at_1":
        dx = dx_pad[:, :, 1:-1, 1:-1]
    else:
        dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    if MISTAKE == "height_width_swapped":
        dx = dx.reshape(N, C, W, H)
    if MISTAKE == "db_summed_over_wrong_axes":
        db = dout.sum(axis=(1, 2, 3))
    if MISTAKE == "divided_by_batch_size":
        dw, db = dw / N, db / N
    if MISTAKE == "unfinished":
        dw = np.zeros_like(w)  # the part of the loop that fills dw is still to be written
    return dx, dw, db
