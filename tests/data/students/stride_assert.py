# Right, but it asserts that the stride divides the padded size evenly (as CS231n's fast layers
# do): layers where it does not raise AssertionError, the others earn full marks.
import numpy as np


def _out_size(n, k, s, p):
    assert (n + 2 * p - k) % s == 0, "width does not work"
    return (n + 2 * p - k) // s + 1


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = _out_size(H, HH, s, p), _out_size(W, WW, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            win = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            for f in range(F):
                out[:, f, i, j] = np.sum(win * w[f], axis=(1, 2, 3)) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = _out_size(H, HH, s, p), _out_size(W, WW, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(Ho):
        for j in range(Wo):
            win = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            for f in range(F):
                g = dout[:, f, i, j]
                dw[f] += np.tensordot(g, win, axes=(0, 0))
                dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += g[:, None, None, None] * w[f]
    return dxp[:, :, p:p + H, p:p + W], dw, dout.sum(axis=(0, 2, 3))
