"""Oracle tests for training.py: hand-computed optimizer steps through backprop, the
learning-rate schedule, the epoch loop, one epoch on the real MNIST, the fast epoch against
the plain reference_epoch, and the step docs/stepping-through.md shows."""
from __future__ import annotations

import math
import types

import numpy as np
import pytest

import optim
import training
from network import Network

# ---- a tiny network, worked through by hand ---------------------------------------

# [3, 2, 2]: for X[0] the hidden pre-activations are (0.2, -0.2), for X[1] (0.79, 0.74),
# so the ReLU derivative is 0 for one unit of one example and 1 elsewhere.
W1 = np.array([[0.2, -0.4], [0.1, 0.3], [-0.5, -0.6]])
B1 = np.array([0.05, -0.1])
W2 = np.array([[0.7, -0.3], [-0.2, 0.4]])
B2 = np.array([0.01, -0.02])
X = np.array([[1.0, 2.0, 0.5], [0.3, 0.8, -1.2]])
Y = np.array([1, 0])
X_NEXT = np.array([[-0.5, 1.5, 1.0]])  # a second batch, of one example
Y_NEXT = np.array([1])


def tiny_net(sizes, activation="relu") -> Network:
    """A float64 network holding W1, B1 (and W2, B2 when it has a hidden layer)."""
    net = Network(sizes, activation, "xavier", np.random.default_rng(0), dtype=np.float64)
    layers = [(W1, B1), (W2, B2)] if len(sizes) == 3 else [(W1, B1)]
    for (w, b), (net_w, net_b) in zip(layers, zip(net.weights, net.biases)):
        net_w[...] = w
        net_b[...] = b
    return net


def reference_grad(weights, biases, x, y, activation="relu", l1=0.0):
    """Gradient of mean cross-entropy (+ l1 sum|W|), one example at a time with np.outer."""
    grad_w = [np.zeros_like(w) for w in weights]
    grad_b = [np.zeros_like(b) for b in biases]
    for xi, yi in zip(x, y):
        acts = [xi]
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = acts[-1] @ w + b
            if i < len(weights) - 1:
                z = np.maximum(z, 0) if activation == "relu" else 1 / (1 + np.exp(-z))
            acts.append(z)
        e = np.exp(acts[-1] - acts[-1].max())
        delta = e / e.sum()
        delta[yi] -= 1  # d(-log p_y)/dz = p - onehot
        for i in range(len(weights) - 1, -1, -1):
            grad_w[i] += np.outer(acts[i], delta)
            grad_b[i] += delta
            if i > 0:
                a = acts[i]
                slope = (a > 0).astype(float) if activation == "relu" else a * (1 - a)
                delta = (weights[i] @ delta) * slope
    grad_w = [g / len(x) + l1 * np.sign(w) for g, w in zip(grad_w, weights)]
    grad_b = [g / len(x) for g in grad_b]
    return grad_w, grad_b


def train_step(net, optimizer, x, y, lr, l1=0.0):
    """What training.train_epoch does for one batch: backprop scaled by lr, then step."""
    net.backprop(x, np.eye(net.sizes[-1])[y], scale=lr, l1=l1)
    optimizer.step(net.params, net.grad, lr)


def snapshot(net):
    """Copies of the network's weights and biases, as two lists."""
    return [w.copy() for w in net.weights], [b.copy() for b in net.biases]


def assert_params(net, weights, biases):
    """The network's weights and biases equal the expected lists to float64 rounding."""
    for got, want in zip(net.weights + net.biases, weights + biases):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_tiny_net_setup_exercises_the_relu_mask():
    """The hand-picked numbers give one inactive and three active hidden units."""
    z = tiny_net([3, 2]).logits(X)  # the network's own X @ W1 + B1: tiny_net must hold W1 and B1
    np.testing.assert_allclose(z, [[0.2, -0.2], [0.79, 0.74]], atol=1e-12)


# ---- optimizer steps ------------------------------------------------------------------

@pytest.mark.parametrize("l1", [0.0, 0.05])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[3, 2], [3, 2, 2]])
def test_sgd_step_by_hand(sizes, activation, l1):
    """One SGD step gives W - lr * (dL/dW + l1 sign W) and b - lr * dL/db."""
    net = tiny_net(sizes, activation)
    weights, biases = snapshot(net)
    gw, gb = reference_grad(weights, biases, X, Y, activation, l1)
    train_step(net, optim.SGD(), X, Y, lr=0.1, l1=l1)
    assert_params(net, [w - 0.1 * g for w, g in zip(weights, gw)],
                  [b - 0.1 * g for b, g in zip(biases, gb)])


def test_sgd_step_from_zero_weights_on_paper():
    """From W = 0, b = 0 the softmax is (1/2, 1/2), so for x = (1, 2, 0.5), y = 1 and lr = 0.1
    the gradient is x (1/2, -1/2) and the step moves W by -0.1 times that."""
    net = Network([3, 2], "relu", "xavier", np.random.default_rng(0), dtype=np.float64)
    net.params[...] = 0
    train_step(net, optim.SGD(), np.array([[1.0, 2.0, 0.5]]), np.array([1]), lr=0.1)
    assert_params(net, [np.array([[-0.05, 0.05], [-0.1, 0.1], [-0.025, 0.025]])],
                  [np.array([-0.05, 0.05])])


def test_sgd_step_moves_parameters():
    """Sanity check of the oracle above: the step is not a no-op on this input."""
    net = tiny_net([3, 2, 2])
    before = net.params.copy()
    train_step(net, optim.SGD(), X, Y, lr=0.1)
    assert np.all(net.params != before)


def classical_momentum(net, batches, lrs, mu=0.9, activation="relu"):
    """Expected parameters after steps of v <- mu v + g; p <- p - lr v, from reference_grad."""
    weights, biases = snapshot(net)
    vw = [np.zeros_like(w) for w in weights]
    vb = [np.zeros_like(b) for b in biases]
    for (x, y), lr in zip(batches, lrs):
        gw, gb = reference_grad(weights, biases, x, y, activation)
        vw = [mu * v + g for v, g in zip(vw, gw)]
        vb = [mu * v + g for v, g in zip(vb, gb)]
        weights = [w - lr * v for w, v in zip(weights, vw)]
        biases = [b - lr * v for b, v in zip(biases, vb)]
    return weights, biases


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_momentum_two_steps_by_hand(activation):
    """Two momentum steps: v1 = g1, v2 = 0.9 v1 + g2 (g2 at the moved point), p -= lr v each."""
    net = tiny_net([3, 2, 2], activation)
    weights, biases = snapshot(net)
    g1w, g1b = reference_grad(weights, biases, X, Y, activation)
    w1 = [w - 0.1 * g for w, g in zip(weights, g1w)]
    b1 = [b - 0.1 * g for b, g in zip(biases, g1b)]
    g2w, g2b = reference_grad(w1, b1, X_NEXT, Y_NEXT, activation)
    w2 = [w - 0.1 * (0.9 * v + g) for w, v, g in zip(w1, g1w, g2w)]
    b2 = [b - 0.1 * (0.9 * v + g) for b, v, g in zip(b1, g1b, g2b)]

    opt = optim.Momentum(0.9)
    train_step(net, opt, X, Y, lr=0.1)
    assert_params(net, w1, b1)
    train_step(net, opt, X_NEXT, Y_NEXT, lr=0.1)
    assert_params(net, w2, b2)


def test_momentum_with_learning_rate_changes_is_classical():
    """Changing lr between steps still gives v <- mu v + g; p <- p - lr_new v."""
    batches = [(X, Y), (X_NEXT, Y_NEXT), (X, Y), (X_NEXT, Y_NEXT), (X, Y)]
    lrs = [0.1, 0.1, 0.03, 0.03, 0.2]
    net = tiny_net([3, 2, 2])
    weights, biases = classical_momentum(net, batches, lrs, mu=0.8)
    opt = optim.Momentum(0.8)
    for (x, y), lr in zip(batches, lrs):
        train_step(net, opt, x, y, lr)
    assert_params(net, weights, biases)


def test_make_optimizer():
    """make_optimizer builds SGD, Momentum(mu) or Adam and rejects other names."""
    assert isinstance(optim.make_optimizer("sgd"), optim.SGD)
    opt = optim.make_optimizer("momentum", 0.5)
    assert isinstance(opt, optim.Momentum) and opt.momentum == 0.5
    assert isinstance(optim.make_optimizer("adam"), optim.Adam)
    with pytest.raises(ValueError):
        optim.make_optimizer("rmsprop")


# ---- the learning-rate schedule --------------------------------------------------------

def test_learning_rate_schedule():
    """learning_rate(e, 0.001, 0.98) is 0.001 at epoch 1 and multiplies by 0.98 each epoch."""
    assert training.learning_rate(1, 0.001, 0.98) == 0.001
    expected = 0.001
    for epoch in range(1, 31):
        assert training.learning_rate(epoch, 0.001, 0.98) == pytest.approx(expected, rel=1e-12)
        expected *= 0.98
    assert training.learning_rate(31, 0.001, 0.98) < 0.001 * 0.55  # 0.98**30 = 0.545...


def test_learning_rate_without_decay_is_constant():
    """With decay 1.0 (the default) every epoch has the base learning rate."""
    assert all(training.learning_rate(e, 0.005, 1.0) == 0.005 for e in range(1, 101))
    assert all(training.learning_rate(e, 0.005) == 0.005 for e in range(1, 101))


# ---- the epoch loop ---------------------------------------------------------------------

def blobs(rng, n, dim=20, classes=10):
    """A linearly separable data set: y is the argmax of a fixed linear map of x."""
    w = np.random.default_rng(123).standard_normal((dim, classes))
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return types.SimpleNamespace(x=x, y=(x @ w).argmax(axis=1).astype(np.int64))


def synthetic_data(seed=0, n_train=400):
    rng = np.random.default_rng(seed)
    return types.SimpleNamespace(train=blobs(rng, n_train), val=blobs(rng, 200), test=blobs(rng, 200))


class RecordingNetwork(Network):
    """A Network that remembers the input rows of every backprop call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[np.ndarray] = []
        self.seen_labels: list[np.ndarray] = []

    def backprop(self, x, y_onehot, *args, **kwargs):
        self.seen.append(x.copy())
        self.seen_labels.append(y_onehot.argmax(axis=1))
        super().backprop(x, y_onehot, *args, **kwargs)


@pytest.mark.parametrize("n, batch_size", [(40, 4), (10, 4), (700, 2)])
def test_train_epoch_visits_each_example_once(n, batch_size):
    """An epoch takes n // batch_size steps over distinct examples, with their own labels, in a new order each epoch."""
    rng = np.random.default_rng(0)
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 5), np.float32)  # row i is all i
    y = rng.integers(0, 3, n)
    net = RecordingNetwork([5, 3], "relu", "xavier", rng)
    orders = []
    for _ in range(2):
        net.seen, net.seen_labels = [], []
        training.train_epoch(net, x, y, optim.SGD(), 0.0, rng, batch_size=batch_size)
        assert len(net.seen) == n // batch_size
        assert all(len(batch) == batch_size for batch in net.seen)
        ids = np.concatenate([batch[:, 0] for batch in net.seen]).astype(int)
        assert len(set(ids)) == len(ids) == (n // batch_size) * batch_size
        assert np.array_equal(np.concatenate(net.seen_labels), y[ids])
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1])


def test_train_epoch_returns_mean_training_loss():
    """With lr = 0 nothing moves, so the returned loss is net.loss over the whole set."""
    data = synthetic_data()
    net = Network([20, 16, 10], "relu", "xavier", np.random.default_rng(0))
    before = net.params.copy()
    loss = training.train_epoch(net, data.train.x, data.train.y, optim.SGD(), 0.0,
                                np.random.default_rng(1), batch_size=4)
    assert np.array_equal(net.params, before)
    assert loss == pytest.approx(net.loss(data.train.x, data.train.y), rel=1e-5)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_overfits_tiny_batch(activation):
    """20 random examples with random labels are learned to 100 % accuracy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 50)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    net = Network([50, 32, 10], activation, "xavier", np.random.default_rng(1))
    opt = optim.Momentum(0.9)
    assert net.evaluate(x, y)[1] < 0.5
    for _ in range(100):
        training.train_epoch(net, x, y, opt, 0.03, rng, batch_size=4)
    loss, accuracy = net.evaluate(x, y)
    assert accuracy == 1.0
    assert loss < 0.05


def run_train(seed=0, epochs=3, **kwargs):
    data = synthetic_data()
    net = Network([20, 16, 10], "relu", "xavier", np.random.default_rng(seed))
    options = dict(epochs=epochs, optimizer=optim.Momentum(0.9), rng=np.random.default_rng(seed),
                   lr=0.01, decay=0.5, batch_size=4, progress=False)
    options.update(kwargs)
    return net, data, training.train(net, data, **options)


def test_train_yields_one_record_per_epoch():
    """train yields epochs 1..n with decayed learning rates and accuracies in [0, 1]."""
    _, _, records = run_train(epochs=4)
    records = list(records)
    assert [r.epoch for r in records] == [1, 2, 3, 4]
    assert [r.learning_rate for r in records] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
    for r in records:
        for name in ("train", "val", "test"):
            assert 0 <= getattr(r, f"{name}_accuracy") <= 1
            assert math.isfinite(getattr(r, f"{name}_loss"))
        assert r.seconds >= 0
        assert set(r.as_row()) == set(training.HISTORY_COLUMNS)


def test_train_records_match_evaluate():
    """Each record's losses (cross-entropy alone) and accuracies are those of net.evaluate at
    the moment it is yielded, and the penalties are lambda * sum|W| and lambda/2 * sum W^2."""
    net, data, records = run_train(l1=1e-3, l2=1e-2)
    for r in records:
        for name in ("train", "val", "test"):
            split = getattr(data, name)
            assert (getattr(r, f"{name}_loss"), getattr(r, f"{name}_accuracy")) == \
                net.evaluate(split.x, split.y)
        w = [np.asarray(w, np.float64) for w in net.weights]
        assert r.l1_penalty == pytest.approx(1e-3 * sum(np.abs(a).sum() for a in w), rel=1e-12)
        assert r.l2_penalty == pytest.approx(0.5e-2 * sum((a ** 2).sum() for a in w), rel=1e-12)
        assert r.l1_penalty > 0 and r.l2_penalty > 0


def test_penalties_are_zero_when_off():
    """Without L1 or L2 the history's penalty columns hold 0."""
    _, _, records = run_train(epochs=1)
    r = next(iter(records))
    assert (r.l1_penalty, r.l2_penalty) == (0.0, 0.0)


def test_train_learns_separable_data():
    """Three epochs on linearly separable data beat the majority-class guess by far on validation."""
    _, data, records = run_train(decay=1.0)
    records = list(records)
    majority = np.bincount(data.val.y).max() / len(data.val.y)
    assert majority < 0.25
    assert records[-1].val_accuracy > 0.5
    assert records[-1].train_loss < records[0].train_loss < math.log(10)


def test_train_same_seed_same_records():
    """The same seeds give identical records (timing apart)."""
    def rows(seed):
        return [{k: v for k, v in r.as_row().items() if k != "seconds"} for r in run_train(seed=seed)[2]]
    assert rows(7) == rows(7)
    assert rows(7) != rows(8)


def test_huge_learning_rate_raises_training_diverged():
    """A learning rate of 1e6 drives the loss to NaN/inf, which raises TrainingDiverged."""
    _, _, records = run_train(lr=1e6, decay=1.0)
    with pytest.raises(training.TrainingDiverged) as info:
        list(records)
    assert info.value.epoch == 1


# ---- the real MNIST ----------------------------------------------------------------------

def test_one_epoch_on_mnist_reaches_94_percent(mnist_dir):
    """One epoch of [784, 64, 10] ReLU + momentum (lr 0.001, batch 4) gives >= 94 % validation accuracy."""
    import mnist_loader
    data = mnist_loader.load_data("normal", rng=np.random.default_rng(0), data_dir=mnist_dir)
    assert len(data.train.x) == 58_000
    net = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(1))
    (record,) = training.train(net, data, epochs=1, optimizer=optim.Momentum(0.9),
                               rng=np.random.default_rng(2), lr=0.001, batch_size=4,
                               progress=False)
    assert record.val_accuracy >= 0.94
    assert record.test_accuracy >= 0.94


# ---- the plain reference epoch against the fast one -------------------------------------

REFERENCE_PENALTIES = {"none": {}, "l1": {"l1": 1e-3}, "l2": {"l2": 1e-2}, "l1+l2": {"l1": 1e-3, "l2": 1e-2}}


def twin_networks(sizes, activation):
    """Two float64 networks with the same initial weights."""
    return [Network(sizes, activation, "xavier", np.random.default_rng(5), dtype=np.float64) for _ in range(2)]


@pytest.mark.parametrize("penalties", REFERENCE_PENALTIES.values(), ids=REFERENCE_PENALTIES.keys())
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[20, 10], [20, 16, 10], [20, 16, 12, 10]], ids=["0-hidden", "1-hidden", "2-hidden"])
def test_reference_epoch_equals_the_fast_epoch(sizes, activation, name, penalties):
    """Two epochs of train_epoch (backprop with lr folded in, optim.py's in-place steps) and of
    reference_epoch (reference_backprop, then W -= lr * dW written out) from the same weights and
    seed end at the same parameters and losses to float64 rounding; the learning rate changes
    between the epochs, so momentum's and Adam's state must carry over and be rescaled alike."""
    data = synthetic_data(n_train=200)
    x = data.train.x.astype(np.float64)
    fast, plain = twin_networks(sizes, activation)
    lr = 0.001 if name == "adam" else 0.05
    opt, state = optim.make_optimizer(name, 0.9), {}
    rng_fast, rng_plain = np.random.default_rng(3), np.random.default_rng(3)
    start = fast.params.copy()
    for epoch_lr in (lr, lr / 2):
        loss_fast = training.train_epoch(fast, x, data.train.y, opt, epoch_lr, rng_fast, batch_size=4, **penalties)
        loss_plain = training.reference_epoch(plain, x, data.train.y, name, epoch_lr, rng_plain, batch_size=4,
                                              momentum=0.9, state=state, **penalties)
        np.testing.assert_allclose(plain.params, fast.params, rtol=1e-13, atol=1e-14)
        assert loss_plain == pytest.approx(loss_fast, rel=1e-11)
    assert np.abs(fast.params - start).max() > 1e-2  # the epochs really moved the weights


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_reference_epoch_draws_the_same_dropout_masks(activation):
    """With dropout the two epochs draw the same masks from the same rng, step by step."""
    data = synthetic_data(n_train=200)
    x = data.train.x.astype(np.float64)
    fast, plain = twin_networks([20, 16, 12, 10], activation)
    training.train_epoch(fast, x, data.train.y, optim.Momentum(0.9), 0.05, np.random.default_rng(3),
                         batch_size=4, l1=1e-3, dropout=0.3)
    training.reference_epoch(plain, x, data.train.y, "momentum", 0.05, np.random.default_rng(3),
                             batch_size=4, l1=1e-3, dropout=0.3)
    np.testing.assert_allclose(plain.params, fast.params, rtol=1e-13, atol=1e-14)
    other = twin_networks([20, 16, 12, 10], activation)[0]  # another seed: other masks, other weights
    training.reference_epoch(other, x, data.train.y, "momentum", 0.05, np.random.default_rng(4),
                             batch_size=4, l1=1e-3, dropout=0.3)
    assert np.abs(other.params - fast.params).max() > 1e-3


def test_reference_epoch_refuses_an_unknown_optimizer():
    net = twin_networks([20, 10], "relu")[0]
    with pytest.raises(ValueError, match="sgd"):
        training.reference_epoch(net, np.zeros((8, 20)), np.zeros(8, int), "rmsprop", 0.1, np.random.default_rng(0))


# ---- docs/stepping-through.md: the documented step -----------------------------------------

def test_the_documented_sgd_step_prints_what_the_doc_says():
    """The snippet of docs/stepping-through.md, run as a learner runs it, prints the numbers
    the page shows, and its weights after the step are those before minus lr * dW."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "stepping-through.md").read_text(encoding="utf-8")
    code, printed = re.search(r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```", page, re.S).groups()
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed
    lines = dict(line.split(": ", 1) for line in printed.splitlines())
    assert lines["W2 after == W2 - lr * dW2"] == "True"
    before, after, lr_grad, grad = (np.array(lines[k].strip("[]").split(), float) for k in
                                    ("W2 before", "W2 after", "net.grad for W2 (lr * dW2)", "dW2"))
    np.testing.assert_allclose(after, before - lr_grad, atol=2e-6)  # the page's six decimals
    np.testing.assert_allclose(lr_grad, 0.1 * grad, atol=1e-6)
    assert float(lines["loss after"]) < float(lines["loss before"])
