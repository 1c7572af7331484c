# The output size is computed with / (Python 2's floor division, a float in Python 3) in both
# passes: np.zeros and range() refuse a float, so neither pass gives an answer.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    (N, C, H, W) = x.shape
    (F, _, HH, WW) = w.shape
    stride = conv_param.get('stride', 1)
    pad = conv_param.get('pad', 0)
    Hn = 1 + (H + 2 * pad - HH) / stride
    Wn = 1 + (W + 2 * pad - WW) / stride
    padded = np.pad(x, ((0,), (0,), (pad,), (pad,)), mode='constant', constant_values=0)
    out = np.zeros((N, F, Hn, Wn))
    for i in range(N):
        for k in range(F):
            for r in range(Hn):
                for c in range(Wn):
                    out[i, k, r, c] = (padded[i, :, r*stride:r*stride+HH, c*stride:c*stride+WW] * w[k]).sum()
            out[i, k] += b[k]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    (x, w, b, conv_param) = cache
    (N, C, H, W) = x.shape
    (F, _, HH, WW) = w.shape
    stride = conv_param.get('stride', 1)
    pad = conv_param.get('pad', 0)
    Hn = 1 + (H + 2 * pad - HH) / stride
    Wn = 1 + (W + 2 * pad - WW) / stride
    padded = np.pad(x, ((0,), (0,), (pad,), (pad,)), mode='constant', constant_values=0)
    dpadded = np.zeros_like(padded)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(N):
        for k in range(F):
            for r in range(Hn):
                for c in range(Wn):
                    window = padded[i, :, r*stride:r*stride+HH, c*stride:c*stride+WW]
                    dw[k] += window * dout[i, k, r, c]
                    dpadded[i, :, r*stride:r*stride+HH, c*stride:c*stride+WW] += w[k] * dout[i, k, r, c]
    dx = dpadded[:, :, pad:pad+H, pad:pad+W]
    return dx, dw, db
