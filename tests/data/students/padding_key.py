# The backward pass reads conv_param['padding'] (PyTorch's name) where CS231n's key is 'pad':
# KeyError. The forward pass uses the right keys and earns its points.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    st = conv_param['stride']
    pd = conv_param['pad']
    n_img, _, h, wd = x.shape
    n_f, _, kh, kw = w.shape
    oh = (h - kh + 2 * pd) // st + 1
    ow = (wd - kw + 2 * pd) // st + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pd, pd), (pd, pd)))
    out = np.zeros((n_img, n_f, oh, ow))
    for a in range(oh):
        for c in range(ow):
            region = xp[:, np.newaxis, :, a * st:a * st + kh, c * st:c * st + kw]
            out[:, :, a, c] = np.sum(region * w[np.newaxis], axis=(2, 3, 4)) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    st = conv_param['stride']
    pd = conv_param['padding']
    kh, kw = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pd, pd), (pd, pd)))
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    for a in range(dout.shape[2]):
        for c in range(dout.shape[3]):
            g = dout[:, :, a, c, np.newaxis, np.newaxis, np.newaxis]
            dw += np.sum(g * xp[:, np.newaxis, :, a * st:a * st + kh, c * st:c * st + kw], axis=0)
            dxp[:, :, a * st:a * st + kh, c * st:c * st + kw] += np.sum(g * w[np.newaxis], axis=1)
    return dxp[:, :, pd:pd + x.shape[2], pd:pd + x.shape[3]], dw, np.sum(dout, axis=(0, 2, 3))
