# Right, in the notebook's own style: the forward pass caches the padded input, and the backward
# pass takes the windows from it. Graded with a cache of its own making, it earns full marks.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    x_padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), "constant")
    N, _, Hp, Wp = x_padded.shape
    F, _, HH, WW = w.shape
    rows, cols = (Hp - HH) // s + 1, (Wp - WW) // s + 1
    out = np.zeros((N, F, rows, cols))
    for n in range(N):
        for f in range(F):
            for r in range(rows):
                for c in range(cols):
                    field = x_padded[n, :, r * s:r * s + HH, c * s:c * s + WW]
                    out[n, f, r, c] = np.sum(field * w[f]) + b[f]
    return out, (x_padded, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x_padded, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    dx_padded = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    for n in range(dout.shape[0]):
        for f in range(F):
            for r in range(dout.shape[2]):
                for c in range(dout.shape[3]):
                    g = dout[n, f, r, c]
                    dw[f] += g * x_padded[n, :, r * s:r * s + HH, c * s:c * s + WW]
                    dx_padded[n, :, r * s:r * s + HH, c * s:c * s + WW] += g * w[f]
    H, W = x_padded.shape[2] - 2 * p, x_padded.shape[3] - 2 * p
    return dx_padded[:, :, p:p + H, p:p + W], dw, dout.sum(axis=(0, 2, 3))
