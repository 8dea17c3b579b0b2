"""PyTorch as an oracle: from the same weights, on the same batches, 100 SGD or momentum
steps of our engine and of torch.optim.SGD end at the same weights (float64).

Skipped when torch is not installed; it is a benchmark/dev extra (requirements-bench.txt),
never a dependency of the project.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import optim  # noqa: E402
from network import Network  # noqa: E402

STEPS = 100
BATCH = 4
MOMENTUM = 0.9
TOLERANCE = 1e-5
L1 = 1e-3  # large enough to move the weights well beyond TOLERANCE in 100 steps


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One thread: on a busy 2-core machine torch's default thread pool stalls at every
    barrier (steps of a few microseconds took milliseconds), and batches of 4 gain nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _torch_copy(net: Network) -> "torch.nn.Sequential":
    """A float64 nn.Sequential with net's weights (ours (in, out) is torch's weight.T)."""
    nn = torch.nn
    layers = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        linear = nn.Linear(*w.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if i < net.num_layers - 1:
            layers.append(nn.ReLU() if net.activation == "relu" else nn.Sigmoid())
    return nn.Sequential(*layers)


def _train_both(sizes, activation, *, l1=0.0, lrs=(0.01,) * STEPS, momentum=True, seed=0):
    """Run len(lrs) steps in both; return (ours, torch's, initial) as lists of (W, b) arrays."""
    rng = np.random.default_rng(seed)
    net = Network(sizes, activation, "xavier", rng, dtype=np.float64)
    for b in net.biases:  # non-zero biases, so that a bias bug cannot hide behind zeros
        b[...] = 0.1 * rng.standard_normal(b.shape)
    initial = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    model = _torch_copy(net)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]

    ours_opt = optim.Momentum(MOMENTUM) if momentum else optim.SGD()
    torch_opt = torch.optim.SGD(model.parameters(), lr=lrs[0], momentum=MOMENTUM if momentum else 0.0,
                                dampening=0, nesterov=False)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = rng.standard_normal((len(lrs) * BATCH, sizes[0]))
    y = rng.integers(0, sizes[-1], len(lrs) * BATCH)
    onehot = np.eye(sizes[-1])[y]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    for step, lr in enumerate(lrs):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        net.backprop(x[batch], onehot[batch], scale=lr, l1=l1)
        ours_opt.step(net.params, net.grad, lr)

        for group in torch_opt.param_groups:
            group["lr"] = lr
        torch_opt.zero_grad()
        loss = loss_fn(model(xt[batch]), yt[batch])
        if l1:
            loss = loss + l1 * sum(m.weight.abs().sum() for m in linears)
        loss.backward()
        torch_opt.step()

    ours = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    theirs = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]
    return ours, theirs, initial


def _max_diff(a, b) -> float:
    return max(float(np.abs(x - y).max()) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


def _assert_same(ours, theirs, initial):
    assert _max_diff(ours, theirs) < TOLERANCE
    # ... and the steps did something: the weights moved far more than the tolerance.
    assert _max_diff(ours, initial) > 1000 * TOLERANCE


@pytest.mark.parametrize("sizes", [[20, 16, 16, 10], [784, 64, 10]], ids=["20-16-16-10", "784-64-10"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("l1", [0.0, L1], ids=["no-l1", "l1"])
def test_momentum_matches_torch(sizes, activation, l1):
    _assert_same(*_train_both(sizes, activation, l1=l1))


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_l1_term_changes_the_weights(activation):
    """The L1 cases above are not vacuous: the penalty moves the weights measurably."""
    with_l1, _, _ = _train_both([20, 16, 16, 10], activation, l1=L1)
    without, _, _ = _train_both([20, 16, 16, 10], activation, l1=0.0)
    assert _max_diff(with_l1, without) > 100 * TOLERANCE


@pytest.mark.parametrize("sizes", [[20, 16, 16, 10], [784, 64, 10]], ids=["20-16-16-10", "784-64-10"])
@pytest.mark.parametrize("l1", [0.0, L1], ids=["no-l1", "l1"])
def test_momentum_with_learning_rate_decay_matches_torch(sizes, l1):
    """The rate drops between steps 50 and 51; our velocity (stored times lr) must be rescaled."""
    lrs = (0.01,) * 50 + (0.01 * 0.3,) * 50
    _assert_same(*_train_both(sizes, "relu", l1=l1, lrs=lrs))


@pytest.mark.parametrize("sizes", [[784, 10], [20, 16, 16, 10], [784, 64, 10]],
                         ids=["784-10", "20-16-16-10", "784-64-10"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_plain_sgd_matches_torch(sizes, activation):
    lrs = (0.01,) * 50 + (0.001,) * 50
    _assert_same(*_train_both(sizes, activation, l1=L1, lrs=lrs, momentum=False))
    _assert_same(*_train_both(sizes, activation, lrs=lrs, momentum=False))
