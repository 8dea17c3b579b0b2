"""PyTorch as an oracle: from the same weights, on the same batches, 100 SGD, momentum or
Adam steps of our engine and of torch.optim end at the same weights (float64), with L1,
L2 (weight_decay on the weights only) and dropout with fixed masks.

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
L2 = 0.05  # likewise: lr * L2 * W over 100 steps moves each weight by some 5 % of itself
DROPOUT = 0.3


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One thread: on a busy 2-core machine torch's default thread pool stalls at every
    barrier (steps of a few microseconds took milliseconds), and batches of 4 gain nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Masked(torch.nn.Module):
    """Multiplies its input by the step's fixed dropout mask (torch's own Dropout draws its
    masks from its own generator; the test gives both engines the same masks)."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, a):
        return a if self.mask is None else a * self.mask


def _torch_copy(net: Network) -> torch.nn.Sequential:
    """A float64 nn.Sequential with net's weights (ours (in, out) is torch's weight.T),
    a _Masked after each hidden activation."""
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
            layers.append(_Masked())
    return nn.Sequential(*layers)


def _train_both(sizes, activation, *, l1=0.0, l2=0.0, dropout=0.0, lrs=(0.01,) * STEPS,
                momentum=True, adam=False, seed=0):
    """Run len(lrs) steps in both; return (ours, torch's, initial) as lists of (W, b) arrays.

    l2 is torch's weight_decay, given to the weights only (a second parameter group holds
    the biases with weight_decay 0). dropout: the probability of each fixed mask's zeros."""
    rng = np.random.default_rng(seed)
    net = Network(sizes, activation, "xavier", rng, dtype=np.float64)
    for b in net.biases:  # non-zero biases, so that a bias bug cannot hide behind zeros
        b[...] = 0.1 * rng.standard_normal(b.shape)
    initial = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    model = _torch_copy(net)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    masked = [m for m in model if isinstance(m, _Masked)]
    groups = [{"params": [m.weight for m in linears], "weight_decay": l2},
              {"params": [m.bias for m in linears], "weight_decay": 0.0}]

    if adam:
        ours_opt = optim.Adam()
        torch_opt = torch.optim.Adam(groups, lr=lrs[0], betas=(0.9, 0.999), eps=1e-8,
                                     foreach=False)
    else:
        ours_opt = optim.Momentum(MOMENTUM) if momentum else optim.SGD()
        torch_opt = torch.optim.SGD(groups, lr=lrs[0], momentum=MOMENTUM if momentum else 0.0,
                                    dampening=0, nesterov=False)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = rng.standard_normal((len(lrs) * BATCH, sizes[0]))
    y = rng.integers(0, sizes[-1], len(lrs) * BATCH)
    onehot = np.eye(sizes[-1])[y]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    for step, lr in enumerate(lrs):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        masks = None
        if dropout:
            masks = [np.where(rng.random((BATCH, n)) < dropout, 0.0, 1 / (1 - dropout))
                     for n in sizes[1:-1]]
        for module, mask in zip(masked, masks or [None] * len(masked)):
            module.mask = None if mask is None else torch.from_numpy(mask)

        scale = lr if ours_opt.lr_in_grad else 1.0
        net.backprop(x[batch], onehot[batch], scale, l1, l2=l2, dropout_masks=masks)
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
    diff = _max_diff(ours, theirs)
    print(f"max |ours - torch| = {diff:.1e}")  # shown with pytest -s: the margin, not just a pass
    assert diff < TOLERANCE
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


ARCHS = [[20, 16, 16, 10], [784, 64, 10]]
ARCH_IDS = ["20-16-16-10", "784-64-10"]


@pytest.mark.parametrize("sizes", ARCHS, ids=ARCH_IDS)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("momentum", [False, True], ids=["sgd", "momentum"])
def test_l2_matches_torch_weight_decay(sizes, activation, momentum):
    """backprop(l2=lambda) is torch's SGD(weight_decay=lambda) on the weights, 0 on the biases;
    with a learning-rate drop half-way."""
    lrs = (0.01,) * 50 + (0.003,) * 50
    _assert_same(*_train_both(sizes, activation, l2=L2, lrs=lrs, momentum=momentum))


@pytest.mark.parametrize("sizes", ARCHS, ids=ARCH_IDS)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("l2", [0.0, L2], ids=["no-l2", "l2"])
def test_adam_matches_torch(sizes, activation, l2):
    """Our Adam (plain gradient, scale=1) is torch.optim.Adam with its defaults, with and without
    weight_decay (L2 added to the gradient), across a learning-rate drop."""
    lrs = (1e-3,) * 50 + (3e-4,) * 50
    _assert_same(*_train_both(sizes, activation, l2=l2, lrs=lrs, adam=True))


@pytest.mark.parametrize("sizes", ARCHS, ids=ARCH_IDS)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_dropout_with_fixed_masks_matches_torch(sizes, activation, optimizer):
    """Dropout with the same masks in both (a fresh mask per hidden layer per step), with L1 and L2."""
    adam = optimizer == "adam"
    lrs = (1e-3 if adam else 0.01,) * STEPS
    _assert_same(*_train_both(sizes, activation, l1=L1, l2=L2, dropout=DROPOUT, lrs=lrs, adam=adam))


@pytest.mark.parametrize("extra", [dict(l2=L2), dict(dropout=DROPOUT), dict(adam=True)],
                         ids=["l2", "dropout", "adam"])
def test_new_terms_change_the_weights(extra):
    """The cases above are not vacuous: L2, dropout and Adam each move the weights measurably."""
    lrs = (1e-3,) * STEPS if extra.get("adam") else (0.01,) * STEPS
    changed, _, _ = _train_both([20, 16, 16, 10], "relu", lrs=lrs, **extra)
    plain, _, _ = _train_both([20, 16, 16, 10], "relu", lrs=lrs)
    assert _max_diff(changed, plain) > 100 * TOLERANCE
