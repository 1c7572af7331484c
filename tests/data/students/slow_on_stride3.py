# Never finishes on a stride of 3 (its loop forgets to advance, and a bare except swallows the
# first interruption); returns zeros on the other layers. The time limit stops it.
import numpy as np


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    if conv_param["stride"] == 3:
        i = 0
        while i < dout.shape[2]:
            try:
                pass
            except:
                pass
    return np.zeros_like(x), np.zeros_like(w), np.zeros_like(b)
