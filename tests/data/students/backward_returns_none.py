# A finished forward pass; the backward pass has no return statement yet.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    n_img, _, h, wd = x.shape
    nf, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    out = np.empty((n_img, nf, ho, wo))
    for r in range(ho):
        for c in range(wo):
            patch = xp[:, :, r * s:r * s + kh, c * s:c * s + kw]
            out[:, :, r, c] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    db = dout.sum(axis=(0, 2, 3))
