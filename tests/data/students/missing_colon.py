# A colon left off one loop header: the file does not parse, so nothing can be graded.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param['stride'], conv_param['pad']
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), 'constant')
    out = np.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F)
            for hi in range(H_out):
                for wi in range(W_out):
                    patch = x_pad[n, :, hi * stride:hi * stride + HH, wi * stride:wi * stride + WW]
                    out[n, f, hi, wi] = np.sum(patch * w[f, :, :, :]) + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param['stride'], conv_param['pad']
    N, F, H_out, W_out = dout.shape
    HH, WW = w.shape[2], w.shape[3]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), 'constant')
    dx_pad = np.zeros(x_pad.shape)
    dw = np.zeros(w.shape)
    db = np.zeros(b.shape)
    for n in range(N):
        for f in range(F):
            db[f] += np.sum(dout[n, f])
            for hi in range(H_out):
                for wi in range(W_out):
                    top, left = hi * stride, wi * stride
                    dw[f] += x_pad[n, :, top:top + HH, left:left + WW] * dout[n, f, hi, wi]
                    dx_pad[n, :, top:top + HH, left:left + WW] += w[f] * dout[n, f, hi, wi]
    dx = dx_pad[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db
