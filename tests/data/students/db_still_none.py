# dx and dw are allocated, but db is left as the starter code's None and then indexed:
# TypeError. The forward pass is right and earns its points.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    out = None
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param['stride'], conv_param['pad']
    xx = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode='constant')
    Hp = 1 + (H + 2 * pad - HH) // stride
    Wp = 1 + (W + 2 * pad - WW) // stride
    out = np.zeros((N, F, Hp, Wp))
    for n in range(N):
        for hp in range(Hp):
            for wp in range(Wp):
                h0, w0 = hp * stride, wp * stride
                out[n, :, hp, wp] = np.sum(xx[n, :, h0:h0 + HH, w0:w0 + WW] * w, axis=(1, 2, 3))
    out += b[None, :, None, None]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    dx, dw, db = None, None, None
    x, w, b, conv_param = cache
    stride, pad = conv_param['stride'], conv_param['pad']
    HH, WW = w.shape[2:]
    xx = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode='constant')
    dxx = np.zeros_like(xx)
    dw = np.zeros_like(w)
    N, F, Hp, Wp = dout.shape
    for n in range(N):
        for hp in range(Hp):
            for wp in range(Wp):
                h0, w0 = hp * stride, wp * stride
                for f in range(F):
                    dw[f] += xx[n, :, h0:h0 + HH, w0:w0 + WW] * dout[n, f, hp, wp]
                    dxx[n, :, h0:h0 + HH, w0:w0 + WW] += w[f] * dout[n, f, hp, wp]
                    db[f] += dout[n, f, hp, wp]
    dx = dxx[:, :, pad:-pad or None, pad:-pad or None]
    return dx, dw, db
