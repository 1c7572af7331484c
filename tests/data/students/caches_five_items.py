# The forward pass caches the padded input as a fifth item; the backward pass still unpacks
# the four it started with: ValueError (too many values to unpack). The forward pass is right.
import numpy as np


def conv_forward_naive(x, w, b, conv_param):
    stride = conv_param["stride"]
    pad = conv_param["pad"]
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    num, _, height, width = x_padded.shape
    filters, _, fh, fw = w.shape
    out_h = (height - fh) // stride + 1
    out_w = (width - fw) // stride + 1
    out = np.zeros((num, filters, out_h, out_w))
    for y in range(out_h):
        for x_ in range(out_w):
            receptive = x_padded[:, :, y * stride:y * stride + fh, x_ * stride:x_ * stride + fw]
            out[:, :, y, x_] = np.tensordot(receptive, w, axes=([1, 2, 3], [1, 2, 3]))
    out += b.reshape(1, -1, 1, 1)
    cache = (x, w, b, conv_param, x_padded)
    return out, cache


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride = conv_param["stride"]
    pad = conv_param["pad"]
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    fh, fw = w.shape[2], w.shape[3]
    dx_padded = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    for y in range(dout.shape[2]):
        for x_ in range(dout.shape[3]):
            receptive = x_padded[:, :, y * stride:y * stride + fh, x_ * stride:x_ * stride + fw]
            dw += np.tensordot(dout[:, :, y, x_], receptive, axes=([0], [0]))
            dx_padded[:, :, y * stride:y * stride + fh, x_ * stride:x_ * stride + fw] += \
                np.tensordot(dout[:, :, y, x_], w, axes=([1], [0]))
    db = np.sum(dout, axis=(0, 2, 3))
    return dx_padded[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, db
