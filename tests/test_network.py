"""Oracle tests for network.py: numerical gradients, initialization, numerical
stability, and the CSV save/load format."""
from __future__ import annotations

import math

import numpy as np
import pytest

from network import Network, ParameterFileError

H = 1e-6  # centred-difference step (float64)


# ---- helpers -------------------------------------------------------------------

def numerical_grad(net: Network, x: np.ndarray, y: np.ndarray, l1: float,
                   coords: np.ndarray) -> np.ndarray:
    """Centred differences (L(p + h) - L(p - h)) / 2h of net.loss at the flat coordinates."""
    out = np.empty(len(coords))
    for j, k in enumerate(coords):
        old = net.params[k]
        net.params[k] = old + H
        plus = net.loss(x, y, l1)
        net.params[k] = old - H
        minus = net.loss(x, y, l1)
        net.params[k] = old
        out[j] = (plus - minus) / (2 * H)
    return out


def relative_error(num: np.ndarray, ana: np.ndarray) -> float:
    """max |num - ana| / max |num|: scale-free, and not fooled by tiny coordinates."""
    return float(np.max(np.abs(num - ana)) / np.max(np.abs(num)))


def hidden_preactivations(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """The hidden layers' a @ W + b, computed here independently of the network's forward pass."""
    out, a = [], x
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = a @ w + b
        out.append(z)
        a = np.maximum(z, 0) if net.activation == "relu" else 1 / (1 + np.exp(-z))
    return out


def make_checkable_net(sizes, activation, l1, seed=0, batch=5):
    """A float64 net with random biases, and a batch away from ReLU kinks and L1 kinks."""
    rng = np.random.default_rng(seed)
    net = Network(sizes, activation, "xavier", rng, dtype=np.float64)
    for b in net.biases:  # non-zero biases, so their gradients are checked in a generic state
        b[...] = rng.standard_normal(b.shape) * 0.1
    if l1:  # |lambda * w| has a kink at 0: keep every weight clearly away from it
        for w in net.weights:
            small = np.abs(w) < 1e-3
            w[small] = np.where(w[small] < 0, -1e-3, 1e-3)
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    for z in hidden_preactivations(net, x):  # a step of H must not cross max(z, 0)'s kink
        assert np.min(np.abs(z)) > 1e-4, "test setup: a pre-activation is too close to 0"
    return net, x, y


def softmax_cross_entropy64(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean -log softmax(logits)[y] in float64 with the log-sum-exp trick."""
    z = logits.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def forward64(net: Network, x: np.ndarray) -> np.ndarray:
    """The logits computed in float64 from the network's parameters (an independent forward)."""
    a = x.astype(np.float64)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        a = a @ w.astype(np.float64) + b.astype(np.float64)
        if i < net.num_layers - 1:
            if net.activation == "relu":
                a = np.maximum(a, 0)
            else:
                with np.errstate(over="ignore"):
                    a = 1 / (1 + np.exp(-a))
    return a


# ---- gradients -------------------------------------------------------------------

@pytest.mark.parametrize("l1", [0.0, 1e-2])
def test_gradient_no_hidden_layer(l1):
    """[784, 10]: analytic gradient matches centred differences on 200 weights and all biases."""
    net, x, y = make_checkable_net([784, 10], "relu", l1)
    _, ana = net.loss_and_grad(x, y, l1)
    rng = np.random.default_rng(1)
    n_weights = 784 * 10
    coords = np.concatenate([rng.choice(n_weights, 200, replace=False),
                             np.arange(n_weights, n_weights + 10)])  # the biases follow W
    num = numerical_grad(net, x, y, l1, coords)
    assert relative_error(num, ana[coords]) < 1e-6


@pytest.mark.parametrize("l1", [0.0, 1e-2])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[30, 16, 10], [30, 16, 12, 10]])
def test_gradient_hidden_layers(sizes, activation, l1):
    """With 1 and 2 hidden layers, every coordinate of the gradient matches centred differences."""
    net, x, y = make_checkable_net(sizes, activation, l1)
    _, ana = net.loss_and_grad(x, y, l1)
    num = numerical_grad(net, x, y, l1, np.arange(len(net.params)))
    assert relative_error(num, ana) < 1e-6


def test_gradient_is_checked_per_layer():
    """Each layer's own block of the gradient matches, so a swap between layers cannot hide."""
    net, x, y = make_checkable_net([30, 16, 12, 10], "relu", 0.0, seed=3)
    _, ana = net.loss_and_grad(x, y)
    num = numerical_grad(net, x, y, 0.0, np.arange(len(net.params)))
    start = 0
    for w, b in zip(net.weights, net.biases):
        for block in (w, b):
            sl = slice(start, start + block.size)
            assert relative_error(num[sl], ana[sl]) < 1e-6
            start += block.size


def test_loss_and_grad_loss_is_mean_cross_entropy_plus_l1():
    """loss_and_grad's loss is mean cross-entropy + lambda * sum|W| (biases excluded)."""
    net, x, y = make_checkable_net([30, 16, 10], "sigmoid", 1e-2)
    loss, _ = net.loss_and_grad(x, y, 1e-2)
    expected = softmax_cross_entropy64(forward64(net, x), y) \
        + 1e-2 * sum(np.abs(w).sum() for w in net.weights)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_backprop_scale_multiplies_gradient():
    """backprop(scale=s, l1=lam) writes s times the full gradient, the L1 term included."""
    net, x, y = make_checkable_net([30, 16, 10], "relu", 1e-2)
    _, grad = net.loss_and_grad(x, y, 1e-2)
    onehot = np.eye(10)[y]
    net.backprop(x, onehot, scale=0.37, l1=1e-2)
    np.testing.assert_allclose(net.grad, 0.37 * grad, rtol=1e-12, atol=1e-15)


# ---- initialization ----------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[784, 10], [784, 64, 10], [784, 64, 64, 10]])
def test_initial_loss_is_ln10(sizes, activation):
    """With small gauss weights the outputs are near uniform, so the loss is ln(10)."""
    rng = np.random.default_rng(0)
    net = Network(sizes, activation, "gauss", rng)
    x = rng.random((200, 784), dtype=np.float32)  # pixels in [0, 1), as "simple" normalization
    y = rng.integers(0, 10, 200)
    assert abs(net.loss(x, y) - math.log(10)) < 0.05


def test_xavier_init_std():
    """xavier weights have mean 0 and std sqrt(1 / fan_in) in every layer."""
    net = Network([784, 512, 100], "relu", "xavier", np.random.default_rng(0))
    for w, tol in zip(net.weights, (0.02, 0.05)):
        fan_in = w.shape[0]
        assert np.std(w) == pytest.approx(math.sqrt(1 / fan_in), rel=tol)
        assert abs(np.mean(w)) < 0.05 * math.sqrt(1 / fan_in)


def test_gauss_init_std():
    """gauss weights have mean 0 and std 0.01 whatever the fan-in."""
    net = Network([784, 512, 100], "relu", "gauss", np.random.default_rng(0))
    for w, tol in zip(net.weights, (0.02, 0.05)):
        assert np.std(w) == pytest.approx(0.01, rel=tol)
        assert abs(np.mean(w)) < 0.05 * 0.01


@pytest.mark.parametrize("init", ["gauss", "xavier"])
@pytest.mark.parametrize("sizes", [[784, 10], [784, 64, 10], [784, 64, 32, 10]])
def test_shapes_biases_and_parameter_count(sizes, init):
    """Weights are (fan_in, fan_out), biases start at zero, params holds exactly all of them."""
    net = Network(sizes, "relu", init, np.random.default_rng(0))
    assert net.num_layers == len(sizes) - 1
    assert [w.shape for w in net.weights] == list(zip(sizes[:-1], sizes[1:]))
    assert [b.shape for b in net.biases] == [(n,) for n in sizes[1:]]
    assert all(np.all(b == 0) for b in net.biases)
    assert len(net.params) == sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:]))
    assert net.grad.shape == net.params.shape
    assert net.params.dtype == np.float32


def test_weights_are_views_of_params():
    """Changing params changes weights/biases and vice versa (the optimizer updates params)."""
    net = Network([5, 4, 3], "relu", "xavier", np.random.default_rng(0))
    net.params[...] = np.arange(len(net.params))
    assert net.weights[0][0, 0] == 0 and net.biases[-1][-1] == len(net.params) - 1
    net.weights[1][...] = -1
    assert np.count_nonzero(net.params == -1) == 4 * 3


def test_same_seed_same_parameters():
    """The same seed gives bit-identical parameters; another seed gives different ones."""
    a = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(42))
    b = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(42))
    c = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(43))
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


@pytest.mark.parametrize("kwargs", [dict(sizes=[784]), dict(sizes=[784, 0, 10]),
                                    dict(sizes=[784, 10], activation="tanh"),
                                    dict(sizes=[784, 10], init="he")])
def test_bad_arguments_raise_value_error(kwargs):
    """Fewer than two sizes, a zero size, an unknown activation or init raise ValueError."""
    with pytest.raises(ValueError):
        Network(**kwargs)


# ---- evaluation and numerical stability --------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_evaluate_and_predict_proba_match_independent_softmax(activation):
    """evaluate's loss and accuracy and predict_proba match a float64 softmax, across chunks."""
    rng = np.random.default_rng(0)
    net = Network([20, 16, 10], activation, "xavier", rng)
    x = rng.standard_normal((103, 20)).astype(np.float32)
    y = rng.integers(0, 10, 103)
    z = forward64(net, x)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for chunk in (4096, 10):  # 10 does not divide 103: the last chunk is partial
        loss, acc = net.evaluate(x, y, chunk=chunk)
        assert loss == pytest.approx(softmax_cross_entropy64(z, y), rel=1e-5)
        assert acc == np.mean(z.argmax(axis=1) == y)
        np.testing.assert_allclose(net.predict_proba(x, chunk=chunk), p, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[784, 10], [784, 64, 10], [784, 32, 32, 10]])
def test_huge_logits_give_finite_loss_and_normalized_probabilities(sizes, activation):
    """Weights x 1e4 (logit gaps far beyond exp's range) still give a finite loss, no log(0)."""
    rng = np.random.default_rng(0)
    net = Network(sizes, activation, "xavier", rng)
    net.params *= 1e4
    x = rng.standard_normal((50, 784)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss, acc = net.evaluate(x, y)
        probs = net.predict_proba(x)
    assert math.isfinite(loss) and 0 <= acc <= 1
    z = forward64(net, x)
    assert np.ptp(z, axis=1).min() > 1000  # the regime where a naive softmax underflows to 0
    assert loss == pytest.approx(softmax_cross_entropy64(z, y), rel=1e-3)
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


def test_backprop_softmax_is_stable_for_huge_logits():
    """The training forward pass gives probabilities summing to 1 and a finite gradient for huge logits."""
    rng = np.random.default_rng(0)
    net = Network([784, 64, 10], "relu", "xavier", rng)
    net.params *= 1e4
    x = rng.standard_normal((4, 784)).astype(np.float32)
    probs = np.empty((4, 10), np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        net.backprop(x, np.eye(10, dtype=np.float32)[[1, 2, 3, 4]], scale=1e-3, probs_out=probs)
    assert np.all(np.isfinite(probs)) and np.all(np.isfinite(net.grad))
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


# ---- saving and loading ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [[784, 10], [784, 64, 10], [784, 64, 32, 10]])
def test_csv_round_trip_is_exact(tmp_path, sizes, dtype):
    """save_csv then load_csv into a fresh net gives bit-identical parameters, extremes included."""
    net = Network(sizes, "relu", "xavier", np.random.default_rng(0), dtype=dtype)
    info = np.finfo(dtype)
    for b in net.biases:
        b[...] = np.random.default_rng(1).standard_normal(b.shape)
    net.biases[0][:6] = [info.max, -info.max, info.tiny, info.smallest_subnormal, 1 / 3, -2 / 3]
    net.save_csv(tmp_path)
    other = Network(sizes, "relu", "xavier", np.random.default_rng(99), dtype=dtype)
    other.load_csv(tmp_path)
    assert np.array_equal(other.params, net.params)


def test_csv_layout_for_one_hidden_layer(tmp_path):
    """[784, 64, 10] writes weights_1.csv as 784 lines x 64 columns and biases one per line."""
    net = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(0))
    net.biases[0][...] = np.arange(64) / 7
    net.save_csv(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "biases_1.csv", "biases_2.csv", "weights_1.csv", "weights_2.csv"]
    lines = (tmp_path / "weights_1.csv").read_text().splitlines()
    assert len(lines) == 784 and all(len(line.split(",")) == 64 for line in lines)
    rows = [[float(v) for v in line.split(",")] for line in lines]
    assert np.array_equal(np.array(rows, np.float32), net.weights[0])  # row i = input pixel i
    assert len((tmp_path / "weights_2.csv").read_text().splitlines()) == 64
    for i, n in ((1, 64), (2, 10)):
        bias_lines = (tmp_path / f"biases_{i}.csv").read_text().splitlines()
        assert len(bias_lines) == n
        assert np.array_equal(np.array([float(v) for v in bias_lines], np.float32), net.biases[i - 1])


@pytest.mark.parametrize("saved, loaded, culprit", [
    ([784, 10], [784, 64, 10], "weights_1.csv"),        # wrong fan-out
    ([784, 64, 10], [784, 32, 10], "weights_1.csv"),
    ([784, 64, 10], [784, 10], "weights_1.csv"),
    ([10, 10, 10], [10, 10], "weights_2.csv"),          # same first layer, an extra layer on disk
    ([10, 10], [10, 10, 10], "weights_2.csv"),          # a layer missing on disk
    ([784, 64, 10], [784, 64, 64, 10], "weights_2.csv"),
])
def test_load_into_other_sizes_names_the_file(tmp_path, saved, loaded, culprit):
    """Loading a run into a network of other layer sizes raises ParameterFileError naming the file."""
    Network(saved, "relu", "xavier", np.random.default_rng(0)).save_csv(tmp_path)
    net = Network(loaded, "relu", "xavier", np.random.default_rng(0))
    with pytest.raises(ParameterFileError, match=culprit):
        net.load_csv(tmp_path)


def _corrupt_cell(path, text):
    """Replace the first value of the file's second line with text."""
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    cells[0] = text
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("culprit, damage", [
    ("biases_1.csv", lambda p: p.unlink()),
    ("weights_2.csv", lambda p: p.unlink()),
    ("weights_1.csv", lambda p: _corrupt_cell(p, "abc")),
    ("biases_2.csv", lambda p: _corrupt_cell(p, "0.1x")),
    ("weights_2.csv", lambda p: _corrupt_cell(p, "nan")),
    ("biases_1.csv", lambda p: _corrupt_cell(p, "NaN")),
    ("weights_1.csv", lambda p: _corrupt_cell(p, "inf")),
    ("weights_1.csv", lambda p: _corrupt_cell(p, "")),
    ("weights_2.csv", lambda p: p.write_text(p.read_text().rsplit("\n", 2)[0] + "\n")),  # a row short
])
def test_damaged_file_names_the_file(tmp_path, culprit, damage):
    """A missing file, a non-number, NaN/inf or a missing row raises ParameterFileError naming the file."""
    Network([784, 64, 10], "relu", "xavier", np.random.default_rng(0)).save_csv(tmp_path)
    damage(tmp_path / culprit)
    net = Network([784, 64, 10], "relu", "xavier", np.random.default_rng(1))
    with pytest.raises(ParameterFileError, match=culprit):
        net.load_csv(tmp_path)

