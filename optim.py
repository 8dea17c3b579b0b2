"""Optimizers: SGD and classical momentum, one interface, explicit state.

Both take the gradient already multiplied by the learning rate (the network's
backprop folds lr into its first delta, a handful of numbers, instead of a
pass over every parameter) and update the flat parameter vector in place.
"""
from __future__ import annotations

import math

import numpy as np


class SGD:
    """params <- params - lr * grad."""

    def step(self, params: np.ndarray, lr_grad: np.ndarray, lr: float) -> None:
        params -= lr_grad


class Momentum:
    """Classical momentum: v <- mu * v + grad; params <- params - lr * v.

    This is PyTorch's SGD(momentum=mu) with no dampening and no Nesterov, the
    velocity starting at zero. The velocity is stored multiplied by the current
    learning rate (u = lr * v), so a step is three whole-vector calls:
    u <- mu * u + lr * grad; params <- params - u. When the learning rate
    changes (decay, once an epoch) u is rescaled, so the update stays exactly
    the classical one.
    """

    def __init__(self, momentum: float = 0.9):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        # How often (in steps) velocities too small to matter are set to zero:
        # often enough that a velocity above the threshold cannot decay below
        # the normal range (a factor 1e-8) in between; every 64 steps at 0.9.
        self.flush_every = 64 if momentum == 0 else \
            max(1, min(64, int(math.log(1e-8) / math.log(momentum))))
        self.velocity: np.ndarray | None = None
        self.lr: float | None = None
        self.steps = 0

    def step(self, params: np.ndarray, lr_grad: np.ndarray, lr: float) -> None:
        if self.velocity is None:
            self.velocity = np.zeros_like(params)
            self.lr = lr
        u = self.velocity
        if lr != self.lr:
            u *= lr / self.lr
            self.lr = lr
        u *= self.momentum
        u += lr_grad
        params -= u
        self.steps += 1
        if self.steps % self.flush_every == 0:
            self._flush_subnormals()

    def _flush_subnormals(self) -> None:
        """Zero the velocities that are decaying towards the subnormal range.

        Weights that see no gradient (the always-black border pixels with simple
        normalization) keep a velocity that shrinks by 0.9 a step and becomes
        subnormal within an epoch; x86 handles subnormals in microcode, and
        every multiply over the vector then slows several times. A value below
        tiny * 1e8 is some 1e-30 of the weights it moves, and after
        flush_every steps anything above it is still normal.
        """
        u = self.velocity
        threshold = np.finfo(u.dtype).tiny * 1e8
        np.copyto(u, 0, where=np.abs(u) < threshold)


def make_optimizer(name: str, momentum: float = 0.9) -> SGD | Momentum:
    """"sgd" or "momentum" to an optimizer object."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    raise ValueError(f"optimizer must be 'sgd' or 'momentum', got {name!r}")
