"""Oracle tests for optim.py's Adam, for what the loop hands each optimizer and for every
optimizer's state round trip.
(SGD's and momentum's hand-computed steps are in tests/test_training.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

import optim
import training
from network import Network, flat_grad, reference_backprop


def test_adam_first_two_steps_by_hand():
    """Two Adam steps (lr 0.01, betas 0.9/0.999, eps 1e-8) worked out on paper.

    Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected m/(1-0.9) = g and v/(1-0.999) = g^2,
    so each parameter moves by lr * g / (|g| + eps): 0.01 against the sign of g, 0 where g = 0.
    Step 2: m = 0.09 g1 + 0.1 g2 = (0.039, -0.008, -0.04),
    v = 0.000999 g1^2 + 0.001 g2^2 = (9.999e-5, 4.996e-5, 1.6e-4),
    corrected by 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999.
    """
    params = np.array([1.0, -2.0, 0.5])
    adam = optim.Adam()
    adam.step(params, np.array([0.1, -0.2, 0.0]), 0.01)
    np.testing.assert_allclose(params, [0.99, -1.99, 0.5], rtol=0, atol=2e-9)
    assert params[2] == 0.5
    adam.step(params, np.array([0.3, 0.1, -0.4]), 0.01)
    m_hat = np.array([0.039, -0.008, -0.04]) / 0.19
    v_hat = np.array([9.999e-5, 4.996e-5, 1.6e-4]) / 0.001999
    expected = np.array([0.99, -1.99, 0.5]) - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(params, expected, rtol=1e-8)
    # The second step's sizes, in numbers: 0.0091778, 0.0026634 and 0.0074412.
    np.testing.assert_allclose(np.abs(params - [0.99, -1.99, 0.5]), [0.0091778, 0.0026634, 0.0074412],
                               rtol=1e-4)
    assert adam.t == 2


def test_adam_step_size_follows_the_learning_rate():
    """The first step moves each parameter by lr (for |g| >> eps) whatever the size of g."""
    for lr in (0.1, 0.003):
        params = np.zeros(3)
        optim.Adam().step(params, np.array([1e3, -1e-3, 5.0]), lr)
        np.testing.assert_allclose(params, [-lr, lr, -lr], rtol=1e-5)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_adam_takes_plain_gradient_the_others_lr_times_gradient(name):
    """What the training loop hands each optimizer's step: lr * gradient to SGD and momentum,
    the plain gradient to Adam (whose step would otherwise be wrong wherever |g| is near eps),
    against reference_backprop's gradient of the step's batch."""
    class Recording(type(optim.make_optimizer(name))):
        def step(self, params, grad, lr):
            self.received = grad.copy(), lr
            super().step(params, grad, lr)

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 6)), np.array([0, 2, 1, 2])
    net = Network([6, 5, 3], "relu", "xavier", np.random.default_rng(1), dtype=np.float64)
    plain = flat_grad(reference_backprop(net, x, y)[1])  # one batch of 4: the epoch's only step
    opt, lr = Recording(), 0.01
    training.train_epoch(net, x, y, opt, lr, np.random.default_rng(2), batch_size=4)
    received, received_lr = opt.received
    assert received_lr == lr
    np.testing.assert_allclose(received, plain if name == "adam" else lr * plain, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("betas, eps", [((1.0, 0.999), 1e-8), ((0.9, -0.1), 1e-8), ((0.9, 0.999), 0.0)])
def test_adam_bad_hyperparameters(betas, eps):
    with pytest.raises(ValueError, match="Adam"):
        optim.Adam(betas, eps)


def test_make_optimizer_names():
    """make_optimizer builds each optimizer by name and rejects others, naming the choices."""
    assert isinstance(optim.make_optimizer("sgd"), optim.SGD)
    assert isinstance(optim.make_optimizer("adam"), optim.Adam)
    momentum = optim.make_optimizer("momentum", 0.5)
    assert isinstance(momentum, optim.Momentum) and momentum.momentum == 0.5
    with pytest.raises(ValueError, match="adam"):
        optim.make_optimizer("rmsprop")


def _run(optimizer, params, grads, lrs):
    for g, lr in zip(grads, lrs):
        optimizer.step(params, lr * g if optimizer.lr_in_grad else g, lr)


def _textbook(name, params, grads, lrs):
    """The updates as the papers write them, a line each, in the arrays' dtype: the oracle
    that a round trip of a wrong optimizer (SGD's, with no state, above all) cannot match."""
    p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        if name == "sgd":
            p = p - lr * g
        elif name == "momentum":  # v <- mu v + g; p <- p - lr v
            v = 0.9 * v + g
            p = p - lr * v
        else:  # Adam with PyTorch's defaults
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return p


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_round_trip_is_bit_identical(name, dtype):
    """N steps, state(), a new optimizer + load_state, M more steps == N + M steps in one go,
    bit for bit; the learning rate changes on both sides of the cut, and the steps cross
    the subnormal flush (every 64 steps). The N + M steps are the textbook updates, so a
    stateless SGD that stepped wrongly would not pass on its trivial round trip."""
    rng = np.random.default_rng(0)
    n, m, size = 70, 90, 500
    # Gradients over many magnitudes, some coordinates idle after a while (as border pixels).
    grads = (rng.standard_normal((n + m, size)) * np.logspace(0, -30, size)).astype(dtype)
    grads[20:, ::3] = 0
    lrs = [0.01] * 40 + [0.005] * 60 + [0.002] * 60
    start = rng.standard_normal(size).astype(dtype)

    whole = start.copy()
    _run(optim.make_optimizer(name), whole, grads, lrs)
    tight = dtype == np.float64
    np.testing.assert_allclose(whole, _textbook(name, start, grads, lrs),
                               rtol=1e-12 if tight else 1e-5, atol=1e-13 if tight else 1e-6)

    resumed = start.copy()
    first = optim.make_optimizer(name)
    _run(first, resumed, grads[:n], lrs[:n])
    saved = first.state()
    assert all(isinstance(v, (np.ndarray, float, int)) for v in saved.values())
    _run(first, resumed.copy(), grads[n:], lrs[n:])  # the old optimizer goes on: saved must not change
    second = optim.make_optimizer(name)
    second.load_state(saved)
    _run(second, resumed, grads[n:], lrs[n:])
    assert np.array_equal(resumed, whole)
    assert not np.array_equal(resumed, start)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_state_before_any_step_round_trips(name):
    """A fresh optimizer's state loads into another, which then steps as a fresh one."""
    a, b = optim.make_optimizer(name), optim.make_optimizer(name)
    b.load_state(a.state())
    p, q = np.ones(4), np.ones(4)
    a.step(p, np.full(4, 0.1), 0.1)
    b.step(q, np.full(4, 0.1), 0.1)
    assert np.array_equal(p, q)


@pytest.mark.parametrize("source, target", [("adam", "momentum"), ("momentum", "adam"),
                                            ("adam", "sgd"), ("sgd", "adam")])
def test_state_of_another_optimizer_is_refused(source, target):
    """Loading one optimizer's state into another raises ValueError naming the expected keys."""
    a = optim.make_optimizer(source)
    params = np.ones(3)
    a.step(params, np.full(3, 0.1), 0.1)
    with pytest.raises(ValueError, match="state must have the keys"):
        optim.make_optimizer(target).load_state(a.state())


def test_adam_state_is_m_v_t():
    """Adam's state holds PyTorch's exp_avg, exp_avg_sq and step under the names m, v, t."""
    adam = optim.Adam()
    params = np.zeros(2)
    adam.step(params, np.array([2.0, -1.0]), 0.1)
    state = adam.state()
    assert set(state) == {"m", "v", "t"} and state["t"] == 1
    np.testing.assert_allclose(state["m"], [0.2, -0.1])
    np.testing.assert_allclose(state["v"], [0.004, 0.001])
    assert math.isclose(params[0], -0.1, rel_tol=1e-6)


# ---- momentum's velocity: idle coordinates stop, nothing turns subnormal

def test_idle_parameter_velocity_becomes_exactly_zero():
    """A coordinate with zero gradient after one kick ends with velocity exactly 0 and stops moving."""
    opt = optim.Momentum(0.9)
    params = np.zeros(4, np.float32)
    lr = 1e-3
    opt.step(params, np.full(4, lr, np.float32), lr)  # every coordinate gets a gradient of 1 once
    busy = np.array([0, 0, 1, 1], np.float32)  # then only the last two keep getting one
    for _ in range(999):
        opt.step(params, lr * busy, lr)
    assert np.all(opt.velocity[:2] == 0)
    # The busy coordinates sit at the fixed point u = lr * g / (1 - mu).
    np.testing.assert_allclose(opt.velocity[2:], lr / (1 - 0.9), rtol=1e-4)
    frozen = params.copy()
    opt.step(params, lr * busy, lr)
    assert np.array_equal(params[:2], frozen[:2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_velocity_never_subnormal(dtype):
    """Over 1,000 steps where half the coordinates stop getting gradients, no velocity is subnormal."""
    rng = np.random.default_rng(0)
    tiny = np.finfo(dtype).tiny
    n = 2000
    # Gradients from 1 down to 1e-28 (lr * g stays normal): decaying velocities pass
    # through every magnitude.
    scales = np.logspace(0, -28, n).astype(dtype)
    idle = np.arange(n) % 2 == 0
    opt = optim.Momentum(0.9)
    params = np.zeros(n, dtype)
    for step in range(1000):
        lr = 1e-2 if step < 500 else 5e-3  # a rescale of the velocity half-way
        g = (rng.choice([-1, 1], n) * rng.uniform(0.5, 1.5, n) * scales).astype(dtype)
        if step >= 10:
            g[idle] = 0
        opt.step(params, lr * g, lr)
        u = opt.velocity
        assert not np.any((u != 0) & (np.abs(u) < tiny)), f"subnormal velocity at step {step + 1}"
    if dtype == np.float32:  # 990 idle steps take 0.15 * 0.9**k below the flush threshold 1e-30
        assert np.all(opt.velocity[idle] == 0)

