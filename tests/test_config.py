"""kit/config.py: RunConfig's defaults, ranges and JSON round trip, and Normalization, the
one description of how pixels became the network's inputs."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from kit.config import INPUT_SIZE, NUM_CLASSES, Normalization, RunConfig, RunError

ANSWERS = dict(layers=2, normalization="normal", init="xavier", activation="relu", l1=True,
               decay=False, optimizer="momentum", epochs=5, seed=7)


def test_create_fills_the_hyperparameters_with_their_defaults():
    """Every field not given takes its default, the value RunConfig.default reports."""
    config = RunConfig.create(**ANSWERS)
    for name, _, default in RunConfig.options():
        if name not in ANSWERS:
            assert getattr(config, name) == default == RunConfig.default(name), name
    assert (config.learning_rate, config.batch_size, config.hidden_size) == (0.001, 4, 64)


def test_zero_hidden_layers_drop_the_activation():
    config = RunConfig.create(**{**ANSWERS, "layers": 0, "activation": "sigmoid"})
    assert config.activation is None and config.layer_sizes == [INPUT_SIZE, NUM_CLASSES]
    with pytest.raises(ValueError, match="activation is needed"):
        RunConfig.create(**{**ANSWERS, "activation": None})


@pytest.mark.parametrize("name, value, needle", [
    ("learning_rate", 0.0, "learning_rate must be > 0"),
    ("learning_rate", math.inf, "learning_rate must be a number"),
    ("momentum", 1.0, "momentum must be >= 0 and < 1"),
    ("dropout", -0.1, "dropout must be >= 0 and < 1"),
    ("epochs", 0, "epochs must be >= 1"),
    ("epochs", 2.0, "epochs must be a whole number"),
    ("batch_size", True, "batch_size must be a whole number"),
    ("layers", 3, "layers must be one of 0, 1, 2"),
    ("optimizer", "rmsprop", "optimizer must be one of sgd, momentum, adam"),
    ("l1", 1, "l1 must be one of true, false"),
    ("augment", "flip", "augment must be one of shift, affine"),
])
def test_a_value_out_of_range_is_named_with_the_range(name, value, needle):
    with pytest.raises(ValueError) as info:
        RunConfig.create(**{**ANSWERS, name: value})
    assert needle in str(info.value)


def test_the_edges_of_the_ranges_are_allowed_where_the_option_says_so():
    RunConfig.create(**{**ANSWERS, "momentum": 0.0, "dropout": 0.0, "l2": 0.0, "epochs": 10_000})
    with pytest.raises(ValueError, match="epochs must be"):
        RunConfig.create(**{**ANSWERS, "epochs": 10_001})


@pytest.mark.parametrize("changes", [{}, {"layers": 0, "activation": None}, {"l2": 1e-4, "dropout": 0.2,
                                     "augment": "shift", "patience": 3, "limit": 500, "hidden_size": 32}])
def test_json_round_trip_gives_the_same_config(changes):
    config = RunConfig.create(**{**ANSWERS, **changes})
    d = config.to_json()
    assert d["layer_sizes"] == config.layer_sizes
    assert RunConfig.from_json(d, "run.json") == config


@pytest.mark.parametrize("damage, needle", [
    (lambda d: d.pop("optimizer"), "missing key(s) optimizer"),
    (lambda d: d.update(layer_sizes=[784, 10]), "layer_sizes [784, 10] do not match 2 hidden layer(s) of 64"),
    (lambda d: d.update(learning_rate="fast"), "learning_rate must be a number"),
    (lambda d: d.update(activation=None), "activation is needed"),
    (lambda d: d.update(surprise=1), None),  # unknown keys are left alone (newer fields)
])
def test_from_json_names_the_file_and_the_key(damage, needle):
    d = RunConfig.create(**ANSWERS).to_json()
    damage(d)
    if needle is None:
        assert RunConfig.from_json(d, "x/run.json") == RunConfig.create(**ANSWERS)
        return
    with pytest.raises(RunError) as info:
        RunConfig.from_json(d, "x/run.json")
    assert str(info.value).startswith("x/run.json: ") and needle in str(info.value)


def test_from_json_refuses_what_is_not_an_object():
    with pytest.raises(RunError, match="not a JSON object"):
        RunConfig.from_json([1, 2], "run.json")


def test_summary_names_what_differs_from_the_defaults():
    assert RunConfig.create(**ANSWERS).summary() == "2h-relu-momentum-normal-xavier-l1"
    config = RunConfig.create(**{**ANSWERS, "layers": 0, "l1": False, "decay": True, "l2": 1e-4,
                                 "hidden_size": 32, "augment": "affine"})
    assert config.summary() == "0h-momentum-normal-xavier-decay-l2-0.0001-aug-affine"


def test_build_network_has_the_configured_shape_and_is_seeded():
    config = RunConfig.create(**{**ANSWERS, "hidden_size": 16, "activation": "sigmoid"})
    a, b = (config.build_network(np.random.default_rng(3)) for _ in range(2))
    assert a.sizes == [784, 16, 16, 10] and a.activation == "sigmoid" and a.dtype == np.float32
    assert np.array_equal(a.params, b.params)
    assert config.build_network(dtype=np.float64).dtype == np.float64


def test_the_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig.create(**ANSWERS).epochs = 6


# ---- Normalization ----------------------------------------------------------------------------

@pytest.mark.parametrize("norm", [Normalization("simple"), Normalization("normal", 33.318, 78.567)])
def test_apply_gives_float_pixels_the_inputs_of_the_same_uint8_pixels(norm):
    """A photo's float pixels and the data's uint8 pixels of the same values become the same
    float32 inputs, bit for bit, for all 256 values."""
    u8 = np.arange(256, dtype=np.uint8)
    from_u8, from_float = norm.apply(u8), norm.apply(u8.astype(np.float64))
    assert from_u8.dtype == from_float.dtype == np.float32
    assert np.array_equal(from_u8, from_float)
    lo, hi = norm.pixel_range()
    assert (lo, hi) == (from_u8[0], from_u8[255])


def test_normal_inputs_are_centred_by_the_mean_in_pixel_units():
    norm = Normalization("normal", 51.0, 102.0)
    np.testing.assert_allclose(norm.apply(np.array([0, 51, 255], np.uint8)), [-0.5, 0.0, 2.0], rtol=1e-6)
    assert Normalization("simple").pixel_range() == (0.0, 1.0)


@pytest.mark.parametrize("d, needle", [
    ({"kind": "normal", "mean": 33.0, "std": 0.0}, "std must be a number from 0.001 to 255"),
    ({"kind": "normal", "mean": "x", "std": 78.0}, "mean must be a number"),
    ({"kind": "simple", "mean": 33.0, "std": 78.0}, "simple normalization has no mean or std"),
    ({"kind": "zscore"}, "unknown normalization 'zscore'"),
    ({"mean": 33.0, "std": 78.0}, "must be an object with kind, mean and std"),
])
def test_normalization_from_json_refuses_bad_values(d, needle):
    with pytest.raises(RunError) as info:
        Normalization.from_json(d, "run.json")
    assert needle in str(info.value)


def test_normalization_reads_past_a_newer_versions_key():
    """An unknown key (a newer version's) does not make the run unreadable."""
    assert Normalization.from_json({"kind": "simple", "scale": 2}, "run.json") == Normalization("simple")


def test_normalization_json_round_trip():
    norm = Normalization("normal", 33.318, 78.567)
    assert Normalization.from_json(norm.to_json(), "run.json") == norm
