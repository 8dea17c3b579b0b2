"""Optimizers: SGD, classical momentum and Adam, one interface, explicit state.

`step(params, grad, lr)` updates the flat parameter vector in place. What
`grad` holds is each optimizer's `lr_in_grad`: SGD and momentum take the
gradient already multiplied by the learning rate (the network's backprop folds
lr into its first delta, a handful of numbers, instead of a pass over every
parameter); Adam takes the plain gradient (backprop with scale=1), see Adam.

`state()` and `load_state()` save and restore everything a step depends on, so
an optimizer rebuilt with the same hyperparameters continues bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam")

State = dict[str, "np.ndarray | float | int"]


class SGD:
    """params <- params - lr * grad. It has no state."""

    lr_in_grad = True

    def step(self, params: np.ndarray, lr_grad: np.ndarray, lr: float) -> None:
        params -= lr_grad

    def state(self) -> State:
        return {}

    def load_state(self, state: State) -> None:
        _check_keys(state, set(), "SGD")


class Momentum:
    """Classical momentum: v <- mu * v + grad; params <- params - lr * v.

    This is PyTorch's SGD(momentum=mu) with no dampening and no Nesterov, the
    velocity starting at zero. The velocity is stored multiplied by the current
    learning rate (u = lr * v), so a step is three whole-vector calls:
    u <- mu * u + lr * grad; params <- params - u. When the learning rate
    changes (decay, once an epoch) u is rescaled, so the update stays exactly
    the classical one.
    """

    lr_in_grad = True

    def __init__(self, momentum: float = 0.9):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        # How often (in steps) velocities too small to matter are set to zero:
        # often enough that a velocity above the threshold cannot decay below
        # the normal range (a factor 1e-8) in between; every 64 steps at 0.9.
        self.flush_every = _flush_interval(momentum)
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
            _flush_subnormals(u)

    def state(self) -> State:
        """{"steps"} and, after the first step, {"velocity" (lr * v), "lr"}."""
        if self.velocity is None:
            return {"steps": self.steps}
        return {"velocity": self.velocity.copy(), "lr": float(self.lr), "steps": self.steps}

    def load_state(self, state: State) -> None:
        _check_keys(state, {"steps"} | ({"velocity", "lr"} if "velocity" in state else set()), "Momentum")
        self.steps = int(state["steps"])
        self.velocity = np.array(state["velocity"], copy=True) if "velocity" in state else None
        self.lr = float(state["lr"]) if "lr" in state else None


class Adam:
    """PyTorch's Adam (amsgrad off), with its defaults and bias correction:

        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g**2;  t <- t + 1
        params <- params - lr / (1 - b1**t) * m / (sqrt(v / (1 - b2**t)) + eps)

    L2 is PyTorch's Adam(weight_decay): backprop adds l2 * W to g, so the decay
    passes through m and v (not AdamW's decoupled decay).

    Adam takes the plain gradient (lr_in_grad = False: the loop calls backprop
    with scale=1). Dividing lr * g back by lr would cost one more pass over the
    parameters each step (Adam's step already makes 13) and round every gradient
    twice; handing Adam lr * g with eps scaled by lr instead would need m rescaled
    by the ratio and v by its square whenever the learning rate changes. The scale
    is a number the loop already passes, so passing 1 is free and keeps PyTorch's
    arithmetic. (benchmarks/engine_options.py times both; on a loaded 2-core
    machine the medians were 4.10 s and 4.06 s an epoch of 784-64-64-10, within
    its noise, the fastest epochs 2.88 s and 4.06 s.)
    """

    lr_in_grad = False

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam's betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"Adam's eps must be positive, got {eps}")
        self.beta1, self.beta2, self.eps = float(b1), float(b2), float(eps)
        # m decays by b1 and v by b2 where gradients stop; flush them before they
        # turn subnormal (see _flush_subnormals), at the faster decay's interval.
        self.flush_every = _flush_interval(min(b1, b2))
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0
        self._buf: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> None:
        if self.m is None:
            self.m, self.v = np.zeros_like(params), np.zeros_like(params)
        if self._buf is None:  # one optimizer serves one parameter vector
            self._buf = np.empty_like(params)
        m, v, buf = self.m, self.v, self._buf
        self.t += 1
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=buf)
        m += buf
        v *= self.beta2
        np.multiply(grad, grad, out=buf)
        buf *= 1 - self.beta2
        v += buf
        step_size = lr / (1 - self.beta1 ** self.t)
        # sqrt(v) / sqrt(1 - b2**t) + eps, in PyTorch's order of operations.
        np.sqrt(v, out=buf)
        buf /= math.sqrt(1 - self.beta2 ** self.t)
        buf += self.eps
        np.divide(m, buf, out=buf)
        buf *= step_size
        params -= buf
        if self.t % self.flush_every == 0:
            _flush_subnormals(m)
            _flush_subnormals(v)

    def state(self) -> State:
        """{"t"} and, after the first step, {"m", "v"}."""
        if self.m is None:
            return {"t": self.t}
        return {"m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state(self, state: State) -> None:
        _check_keys(state, {"t"} | ({"m", "v"} if "m" in state else set()), "Adam")
        self.t = int(state["t"])
        self.m = np.array(state["m"], copy=True) if "m" in state else None
        self.v = np.array(state["v"], copy=True) if "v" in state else None


def _flush_interval(decay: float) -> int:
    """Steps between flushes such that a value decaying by `decay` a step cannot
    fall by more than a factor 1e-8 in between; at most 64."""
    if decay == 0:
        return 64
    return max(1, min(64, int(math.log(1e-8) / math.log(decay))))


def _flush_subnormals(u: np.ndarray) -> None:
    """Zero the values of an optimizer's state that are decaying towards the subnormal range.

    Weights that see no gradient (the always-black border pixels with simple
    normalization) keep a velocity that shrinks by 0.9 a step and becomes
    subnormal within an epoch; x86 handles subnormals in microcode, and
    every multiply over the vector then slows several times. A value below
    tiny * 1e8 is some 1e-30 of the weights it moves, and after
    flush_every steps anything above it is still normal.
    """
    threshold = np.finfo(u.dtype).tiny * 1e8
    np.copyto(u, 0, where=np.abs(u) < threshold)


def _check_keys(state: State, expected: set[str], name: str) -> None:
    if set(state) != expected:
        raise ValueError(f"{name} state must have the keys {sorted(expected)}, got {sorted(state)}; "
                         "it was saved by another optimizer")


def make_optimizer(name: str, momentum: float = 0.9) -> SGD | Momentum | Adam:
    """"sgd", "momentum" or "adam" (PyTorch's defaults) to an optimizer object."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    if name == "adam":
        return Adam()
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
