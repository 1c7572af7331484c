# Right for square kernels, which it asserts in both passes: a layer with a 2x3, 3x2 or 5x3
# kernel raises AssertionError there, the other layers earn full marks.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    F, C, K, K2 = w.shape
    assert K == K2, "kernel must be square"
    S, P = conv_param['stride'], conv_param['pad']
    N, _, H, W = x.shape
    x_p = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    Ho = (H + 2 * P - K) // S + 1
    Wo = (W + 2 * P - K) // S + 1
    out = np.zeros((N, F, Ho, Wo))
    for f in range(F):
        for r in range(Ho):
            for c in range(Wo):
                out[:, f, r, c] = np.sum(x_p[:, :, r * S:r * S + K, c * S:c * S + K] * w[f], axis=(1, 2, 3))
        out[:, f] += b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    F, C, K, K2 = w.shape
    assert K == K2, "kernel must be square"
    S, P = conv_param['stride'], conv_param['pad']
    x_p = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dx_p = np.zeros_like(x_p)
    dw = np.zeros_like(w)
    for f in range(F):
        for r in range(dout.shape[2]):
            for c in range(dout.shape[3]):
                d = dout[:, f, r, c].reshape(-1, 1, 1, 1)
                dw[f] += np.sum(d * x_p[:, :, r * S:r * S + K, c * S:c * S + K], axis=0)
                dx_p[:, :, r * S:r * S + K, c * S:c * S + K] += d * w[f]
    H, W = x.shape[2:]
    return dx_p[:, :, P:P + H, P:P + W], dw, dout.sum(axis=(0, 2, 3))
