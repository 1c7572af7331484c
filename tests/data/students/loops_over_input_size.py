# The backward pass loops over the input's H and W where the output's H_out and W_out belong:
# on a layer whose output is smaller than its input, dout is read past its end (IndexError);
# where the two are equal, it is right.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    s = conv_param['stride']
    p = conv_param['pad']
    H_out = int(1 + (H + 2 * p - HH) // s)
    W_out = int(1 + (W + 2 * p - WW) // s)
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), 'constant')
    out = np.zeros((N, F, H_out, W_out))
    for f in range(F):
        for i in range(H_out):
            for j in range(W_out):
                hs, ws = i * s, j * s
                for n in range(N):
                    out[n, f, i, j] = np.sum(x_pad[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    s = conv_param['stride']
    p = conv_param['pad']
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), 'constant')
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            for i in range(H):
                for j in range(W):
                    hs, ws = i * s, j * s
                    db[f] += dout[n, f, i, j]
                    dw[f] += x_pad[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, p:p + H, p:p + W]
    return dx, dw, db
