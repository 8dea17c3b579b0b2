"""Oracle tests for network.py: numerical gradients, initialization, numerical
stability, and the CSV save/load format."""
from __future__ import annotations

import math

import numpy as np
import pytest

from network import Network, ParameterFileError, flat_grad, reference_backprop, softmax_cross_entropy

H = 1e-6  # centred-difference step (float64)


# ---- helpers -------------------------------------------------------------------

def objective64(net: Network, x: np.ndarray, y: np.ndarray, l1: float = 0.0, l2: float = 0.0,
                masks=None) -> float:
    """Mean cross-entropy + l1 sum|W| + l2/2 sum W^2, from an independent float64 forward pass."""
    logits = forward64(net, x, masks)
    return (softmax_cross_entropy64(logits, y) + l1 * sum(np.abs(w).sum() for w in net.weights)
            + l2 / 2 * sum(np.square(w).sum() for w in net.weights))


def numerical_grad(net: Network, x: np.ndarray, y: np.ndarray, l1: float, coords: np.ndarray,
                   l2: float = 0.0, masks=None) -> np.ndarray:
    """Centred differences (L(p + h) - L(p - h)) / 2h of objective64 at the flat coordinates."""
    out = np.empty(len(coords))
    for j, k in enumerate(coords):
        old = net.params[k]
        net.params[k] = old + H
        plus = objective64(net, x, y, l1, l2, masks)
        net.params[k] = old - H
        minus = objective64(net, x, y, l1, l2, masks)
        net.params[k] = old
        out[j] = (plus - minus) / (2 * H)
    return out


def relative_error(num: np.ndarray, ana: np.ndarray) -> float:
    """max |num - ana| / max |num|: scale-free, and not fooled by tiny coordinates."""
    return float(np.max(np.abs(num - ana)) / np.max(np.abs(num)))


def hidden_preactivations(net: Network, x: np.ndarray, masks=None) -> list[np.ndarray]:
    """The hidden layers' a @ W + b, computed here independently of the network's forward pass."""
    out, a = [], x
    masks = masks if masks is not None else [None] * (net.num_layers - 1)
    for w, b, mask in zip(net.weights[:-1], net.biases[:-1], masks):
        z = a @ w + b
        out.append(z)
        a = np.maximum(z, 0) if net.activation == "relu" else 1 / (1 + np.exp(-z))
        if mask is not None:
            a = a * mask
    return out


def dropout_masks(sizes, batch, p=0.4, seed=5):
    """Fixed inverted-dropout multipliers: 0 for a dropped unit, 1 / (1 - p) for a kept one."""
    rng = np.random.default_rng(seed)
    masks = [np.where(rng.random((batch, n)) < p, 0.0, 1 / (1 - p)) for n in sizes[1:-1]]
    assert all(0 < np.mean(m == 0) < 1 for m in masks), "test setup: a mask drops all or nothing"
    return masks


def make_checkable_net(sizes, activation, l1, seed=0, batch=5, masks=None):
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
    for z in hidden_preactivations(net, x, masks):  # a step of H must not cross max(z, 0)'s kink
        assert np.min(np.abs(z)) > 1e-4, "test setup: a pre-activation is too close to 0"
    return net, x, y


def softmax_cross_entropy64(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean -log softmax(logits)[y] in float64 with the log-sum-exp trick."""
    z = logits.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def forward64(net: Network, x: np.ndarray, masks=None) -> np.ndarray:
    """The logits computed in float64 from the network's parameters (an independent forward),
    each hidden activation multiplied by its dropout mask when masks are given."""
    a = x.astype(np.float64)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        a = a @ w.astype(np.float64) + b.astype(np.float64)
        if i < net.num_layers - 1:
            if net.activation == "relu":
                a = np.maximum(a, 0)
            else:
                with np.errstate(over="ignore"):
                    a = 1 / (1 + np.exp(-a))
            if masks is not None:
                a = a * masks[i]
    return a


# ---- softmax_cross_entropy -----------------------------------------------------------

def test_softmax_cross_entropy_matches_direct_formula():
    """Loss = mean -log(e^z_y / sum e^z), gradient = (softmax - onehot) / N, by the plain formula."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 10)) * 3
    y = rng.integers(0, 10, 7)
    loss, grad = softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(np.mean(-np.log(p[np.arange(7), y])), rel=1e-13)
    np.testing.assert_allclose(grad, (p - np.eye(10)[y]) / 7, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_gradient_is_numerical():
    """Its gradient matches centred differences of its own loss at every logit."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 6))
    y = rng.integers(0, 6, 4)
    _, grad = softmax_cross_entropy(z, y)
    num = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[idx] += H
        minus[idx] -= H
        num[idx] = (softmax_cross_entropy(plus, y)[0] - softmax_cross_entropy(minus, y)[0]) / (2 * H)
    assert relative_error(num, grad) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_for_huge_logits(dtype):
    """Logits of 1e4 give the exact loss (the logit gap), no overflow, and a finite gradient."""
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], dtype)
    y = np.array([1, 2])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss, grad = softmax_cross_entropy(z, y)
    # Row 1: -log softmax = 1e4 - 0; row 2: log(2 e^1e4) - 0 = 1e4 + ln 2.
    assert loss == pytest.approx((1e4 + 1e4 + math.log(2)) / 2, rel=1e-7)
    assert grad.dtype == dtype and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0], [0.25, 0.25, -0.5]], atol=1e-7)


# ---- gradients -------------------------------------------------------------------

def assert_both_gradients_match(net, x, y, coords, l1=0.0, l2=0.0, masks=None):
    """The fast path (loss_and_grad) and reference_backprop both match centred differences
    at coords, and their objectives match objective64."""
    num = numerical_grad(net, x, y, l1, coords, l2, masks)
    fast_loss, fast = net.loss_and_grad(x, y, l1, l2, masks)
    ref_loss, ref = reference_backprop(net, x, y, l1, l2, masks)
    assert relative_error(num, fast[coords]) < 1e-6
    assert relative_error(num, flat_grad(ref)[coords]) < 1e-6
    expected = objective64(net, x, y, l1, l2, masks)
    assert fast_loss == pytest.approx(expected, rel=1e-12)
    assert ref_loss == pytest.approx(expected, rel=1e-12)


PENALTIES = [dict(), dict(l1=1e-2), dict(l2=3e-2), dict(l1=1e-2, l2=3e-2)]
PENALTY_IDS = ["none", "l1", "l2", "l1+l2"]


@pytest.mark.parametrize("penalties", PENALTIES, ids=PENALTY_IDS)
def test_gradient_no_hidden_layer(penalties):
    """[784, 10]: analytic gradients match centred differences on 200 weights and all biases."""
    net, x, y = make_checkable_net([784, 10], "relu", penalties.get("l1", 0))
    rng = np.random.default_rng(1)
    n_weights = 784 * 10
    coords = np.concatenate([rng.choice(n_weights, 200, replace=False),
                             np.arange(n_weights, n_weights + 10)])  # the biases follow W
    assert_both_gradients_match(net, x, y, coords, **penalties)


@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("penalties", PENALTIES, ids=PENALTY_IDS)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[30, 16, 10], [30, 16, 12, 10]])
def test_gradient_hidden_layers(sizes, activation, penalties, dropout):
    """With 1 and 2 hidden layers, L1, L2 and a fixed dropout mask, every coordinate of both
    gradients matches centred differences."""
    masks = dropout_masks(sizes, 5) if dropout else None
    net, x, y = make_checkable_net(sizes, activation, penalties.get("l1", 0), masks=masks)
    assert_both_gradients_match(net, x, y, np.arange(len(net.params)), masks=masks, **penalties)


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


@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("sizes", [[30, 10], [30, 16, 10], [30, 16, 12, 10]])
def test_fast_backprop_equals_reference(sizes, activation, dropout):
    """The buffered backprop gives reference_backprop's gradient to float64 rounding, with
    L1 and L2 and a fixed dropout mask, over a batch of 4 as in training."""
    masks = dropout_masks(sizes, 4, p=0.5) if dropout else None
    net, x, y = make_checkable_net(sizes, activation, 1e-2, batch=4, masks=masks)
    _, fast = net.loss_and_grad(x, y, l1=1e-2, l2=3e-2, dropout_masks=masks)
    _, ref = reference_backprop(net, x, y, l1=1e-2, l2=3e-2, dropout_masks=masks)
    assert np.max(np.abs(fast - flat_grad(ref))) < 1e-12 * max(1.0, np.max(np.abs(fast)))
    assert np.max(np.abs(fast)) > 1e-3  # not two zeros


def test_dropout_mask_changes_the_gradient():
    """The dropout cases are not vacuous: a mask changes the gradient, and a dropped
    unit's incoming weights get no cross-entropy gradient from that example."""
    sizes = [30, 16, 10]
    net, x, y = make_checkable_net(sizes, "relu", 0.0, batch=1)
    mask = np.full((1, 16), 2.0)
    mask[0, :8] = 0
    _, without = net.loss_and_grad(x, y)
    _, with_mask = net.loss_and_grad(x, y, dropout_masks=[mask])
    assert np.max(np.abs(with_mask - without)) > 1e-3
    assert np.all(with_mask[:30 * 16].reshape(30, 16)[:, :8] == 0)


def test_backprop_draws_inverted_dropout_masks():
    """backprop(dropout=p, rng) keeps a unit with probability 1 - p, scales it by 1 / (1 - p),
    and equals backprop with the mask it drew (read back from the same seed)."""
    net, x, y = make_checkable_net([30, 400, 10], "relu", 0.0, batch=4)
    onehot = np.eye(10)[y]
    net.backprop(x, onehot, dropout=0.25, rng=np.random.default_rng(7))
    drawn = net.grad.copy()
    uniform = np.random.default_rng(7).random((4, 400))
    mask = np.where(uniform >= 0.25, 1 / 0.75, 0.0)
    assert 0.7 < np.mean(mask > 0) < 0.8
    net.backprop(x, onehot, dropout_masks=[mask])
    np.testing.assert_allclose(drawn, net.grad, rtol=1e-12, atol=1e-15)
    net.backprop(x, onehot, dropout=0.25, rng=np.random.default_rng(8))
    assert not np.allclose(drawn, net.grad)  # another seed, another mask


@pytest.mark.parametrize("kwargs, message", [(dict(dropout=0.5), "rng"),
                                             (dict(dropout=1.0, rng=np.random.default_rng(0)), r"\[0, 1\)")])
def test_dropout_bad_arguments(kwargs, message):
    """Dropout without a Generator, or with p = 1, is refused with a message naming the problem."""
    net, x, y = make_checkable_net([30, 16, 10], "relu", 0.0)
    with pytest.raises(ValueError, match=message):
        net.backprop(x, np.eye(10)[y], **kwargs)


def test_loss_and_grad_loss_is_cross_entropy_plus_penalties():
    """loss_and_grad's loss is mean cross-entropy + l1 sum|W| + l2/2 sum W^2 (biases excluded),
    while loss and evaluate are the cross-entropy alone."""
    net, x, y = make_checkable_net([30, 16, 10], "sigmoid", 1e-2)
    for b in net.biases:
        b += 5  # large biases: a penalty that counted them would be far off
    loss, _ = net.loss_and_grad(x, y, 1e-2, 3e-2)
    ce = softmax_cross_entropy64(forward64(net, x), y)
    l1_sum = sum(np.abs(w).sum() for w in net.weights)
    l2_sum = sum(np.square(w).sum() for w in net.weights)
    assert loss == pytest.approx(ce + 1e-2 * l1_sum + 3e-2 / 2 * l2_sum, rel=1e-12)
    assert net.l1_penalty() == pytest.approx(l1_sum, rel=1e-12)
    assert net.l2_penalty() == pytest.approx(l2_sum / 2, rel=1e-12)
    assert net.loss(x, y) == pytest.approx(ce, rel=1e-12)
    assert net.evaluate(x, y)[0] == pytest.approx(ce, rel=1e-12)


def test_backprop_scale_multiplies_gradient():
    """backprop(scale=s, l1, l2) writes s times the full gradient, the penalty terms included."""
    net, x, y = make_checkable_net([30, 16, 10], "relu", 1e-2)
    _, grad = net.loss_and_grad(x, y, 1e-2, 3e-2)
    onehot = np.eye(10)[y]
    net.backprop(x, onehot, scale=0.37, l1=1e-2, l2=3e-2)
    np.testing.assert_allclose(net.grad, 0.37 * grad, rtol=1e-12, atol=1e-15)


def test_l2_gradient_is_lambda_w_on_weights_only():
    """The L2 part of the gradient is exactly l2 * W on the weights and 0 on the biases."""
    net, x, y = make_checkable_net([30, 16, 10], "relu", 0.0)
    _, plain = net.loss_and_grad(x, y)
    _, with_l2 = net.loss_and_grad(x, y, l2=0.5)
    np.testing.assert_allclose(with_l2 - plain, 0.5 * net.params * net._weight_mask, atol=1e-15)
    assert np.all((with_l2 - plain)[net._weight_mask == 0] == 0)


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
    """The training forward pass gives a finite gradient and the exact logits for huge logits,
    and its gradient equals the reference's (float32)."""
    rng = np.random.default_rng(0)
    net = Network([784, 64, 10], "relu", "xavier", rng)
    net.params *= 1e4
    x = rng.standard_normal((4, 784)).astype(np.float32)
    y = np.array([1, 2, 3, 4])
    logits = np.empty((4, 10), np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        net.backprop(x, np.eye(10, dtype=np.float32)[y], scale=1.0, logits_out=logits)
    z = forward64(net, x)
    assert np.ptp(z, axis=1).min() > 1000
    np.testing.assert_allclose(logits, z, rtol=1e-4, atol=1e-2 * np.abs(z).max() * 1e-3)
    assert np.all(np.isfinite(net.grad))
    _, ref = reference_backprop(net, x, y)
    np.testing.assert_allclose(net.grad, flat_grad(ref), rtol=1e-3, atol=1e-6 * np.abs(net.grad).max())


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



def test_load_refuses_values_that_overflow_the_networks_dtype(tmp_path):
    """A weight finite in float64 but beyond float32 (1e39) is refused naming the file,
    and the network keeps its parameters."""
    net = Network([4, 3, 2], "relu", "xavier", np.random.default_rng(0))
    net.save_csv(tmp_path)
    text = (tmp_path / "weights_2.csv").read_text().splitlines()
    text[1] = "1e39," + text[1].split(",", 1)[1]
    (tmp_path / "weights_2.csv").write_text("\n".join(text) + "\n")
    other = Network([4, 3, 2], "relu", "xavier", np.random.default_rng(5))
    before = other.params.copy()
    with pytest.raises(ParameterFileError, match="weights_2.csv: holds values too large for float32"):
        other.load_csv(tmp_path)
    assert np.array_equal(other.params, before)
    Network([4, 3, 2], "relu", "xavier", dtype=np.float64).load_csv(tmp_path)  # fine in float64
