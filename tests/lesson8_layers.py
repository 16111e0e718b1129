"""Lesson 8's MyDense and MyReLU as a learner writes them: plain classes, with cnnlib's functions.

Shared by the tests of Sequential's duck-typed layers (test_own_layers.py) and of check.layer,
check.sequential and check.network (test_check_training.py).
"""

import numpy as np

import cnnlib


class MyDense:
    def __init__(self, w, b):
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}
        self.cache = None

    def forward(self, x):
        out, self.cache = cnnlib.dense_forward(x, self.params["w"], self.params["b"])
        return out

    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        self.grads["w"][...] = dw
        self.grads["b"][...] = db
        return dx


class MyReLU:
    def __init__(self):
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x):
        out, self.cache = cnnlib.relu_forward(x)
        return out

    def backward(self, dout):
        return cnnlib.relu_backward(dout, self.cache)
