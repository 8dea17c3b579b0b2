"""train.py --sanity (kit/checks.py) and --find-lr (kit/lr_finder.py): they pass the
original's configuration and fail broken ones, suggest a sensible learning rate, write no
run folder, and refuse bad combinations of flags in one line."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_fails, child_env, run_train, snapshot

import train as train_py
from kit import lr_finder
from network import Network

# The original project's 2-hidden configuration (ReLU, Momentum, Normal, Xavier, lr 0.001).
ORIGINAL = ["--layers", "2", "--normalization", "normal", "--init", "xavier", "--activation",
            "relu", "--l1", "n", "--decay", "n", "--optimizer", "momentum", "--epochs", "10",
            "--seed", "1", "--no-show"]


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    i = args.index(flag)
    return args[:i + 1] + [value] + args[i + 2:]


def test_sanity_passes_the_original_configuration_and_writes_nothing(tmp_path, mnist_dir, capsys):
    out = tmp_path / "out"
    code = train_py.main([*ORIGINAL, "--sanity", "--data-dir", str(mnist_dir), "--output-dir", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert [line.split()[0] for line in text.splitlines() if line[:4] in ("PASS", "FAIL")] == ["PASS"] * 3
    assert "ln 10" in text and "relative error" in text and "100% after" in text
    assert not out.exists()  # no run folder, not even the output folder


def test_sanity_fails_a_diverging_learning_rate(tmp_path, mnist_dir, capsys):
    args = with_flag(ORIGINAL, "--optimizer", "momentum") + ["--learning-rate", "5"]
    code = train_py.main([*args, "--sanity", "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1, text
    assert "FAIL  overfit 20 images: the loss became NaN or infinite" in text
    assert list(tmp_path.iterdir()) == []


def test_sanity_gradient_check_catches_a_missing_l1_gradient(tmp_path, mnist_dir, capsys, monkeypatch):
    monkeypatch.setattr(Network, "_add_l1", lambda self, coef: None)  # the L1 term forgotten
    args = with_flag(ORIGINAL, "--l1", "y")
    code = train_py.main([*args, "--sanity", "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1, text
    assert "FAIL  gradient" in text and "PASS  initial loss" in text


def test_sanity_gradient_check_catches_a_gradient_off_by_a_tenth_of_a_percent(mnist_dir, monkeypatch):
    from kit import checks
    from kit.config import RunConfig
    from kit.lifecycle import load_data_for
    config = RunConfig.create(layers=1, normalization="simple", init="xavier", activation="sigmoid",
                              l1=False, decay=False, optimizer="sgd", epochs=1, seed=2)
    rng = np.random.default_rng(config.seed)
    data = load_data_for(config, rng, mnist_dir)
    net = config.build_network(rng)
    x, y = data.train.x[:8], data.train.y[:8]
    good, errors = checks.gradient_check(net, x, y, np.random.default_rng(0))
    assert good.passed and max(errors) < 1e-8
    backprop = Network.backprop

    def slightly_wrong(self, *args, **kwargs):
        backprop(self, *args, **kwargs)
        self.grad *= 1.001
    monkeypatch.setattr(Network, "backprop", slightly_wrong)
    bad, errors = checks.gradient_check(net, x, y, np.random.default_rng(0))
    assert not bad.passed and min(errors) > checks.GRAD_THRESHOLD


def test_find_lr_suggests_between_1e_4_and_1e_1_for_the_original_2_hidden(tmp_path, mnist_dir, capsys):
    for optimizer in ("momentum", "sgd"):
        out = tmp_path / optimizer
        code = train_py.main([*with_flag(ORIGINAL, "--optimizer", optimizer), "--find-lr",
                              "--data-dir", str(mnist_dir), "--output-dir", str(out)])
        text = capsys.readouterr().out
        assert code == 0, text
        line = next(x for x in text.splitlines() if x.startswith("Suggested learning rate:"))
        lr = float(line.split()[3])
        assert 1e-4 <= lr <= 1e-1, text
        assert f"--learning-rate {lr:.2g}" in text.replace("\\\n", "")
        assert sorted(p.name for p in out.iterdir()) == ["lr_finder.png"]
        assert (out / "lr_finder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_find_lr_refuses_to_write_inside_a_run_folder(tmp_path, mnist_dir, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    (run / "weights_1.csv").write_text("1\n")
    before = snapshot(run)
    code = train_py.main([*ORIGINAL, "--find-lr", "--data-dir", str(mnist_dir), "--output-dir", str(run)])
    assert code == 1
    assert "is a run folder" in capsys.readouterr().err
    assert snapshot(run) == before


def test_range_test_stops_when_the_smoothed_loss_explodes_for_every_optimizer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 20)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    from optim import make_optimizer
    for name in ("sgd", "momentum", "adam"):
        net = Network([20, 16, 2], "relu", "xavier", np.random.default_rng(1))
        test = lr_finder.range_test(net, x, y, make_optimizer(name), np.random.default_rng(2),
                                    batch_size=4, lr_max=100.0)
        assert test.steps < test.planned, name
        assert np.all(np.diff(np.log(test.lrs)) > 0)
        best = lr_finder.suggest(test)
        assert best.lr == pytest.approx(best.min_lr / 10)


def test_shell_lines_fit_the_width_and_keep_flag_and_value_together():
    groups = [["python", "train.py"]] + [[f"--flag{i}", "value"] for i in range(12)]
    lines = lr_finder.shell_lines(groups, 79)
    assert all(len(line) <= 79 for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1])
    assert " ".join(line.rstrip(" \\").strip() for line in lines).split() == \
        [w for g in groups for w in g]


@pytest.mark.parametrize("args, needle", [
    (["--sanity", "--resume", "RUN"], "does not go with --resume"),
    (["--find-lr", "--resume", "RUN"], "does not go with --resume"),
    (["--sanity", "--find-lr"], "separate"),
    (["--lr-min", "0.001"], "--lr-min goes with --find-lr"),
    (["--find-lr", "--lr-min", "1", "--lr-max", "0.1"], "must be smaller"),
    (["--find-lr", "--lr-max", "0"], "out of range"),
    (["--sanity", "--name", "x"], "writes none"),
])
def test_bad_combinations_are_one_line_usage_errors(tmp_path, args, needle):
    out = tmp_path / "out"
    proc = run_train([*ORIGINAL, *args, "--output-dir", str(out)], env=child_env(), timeout=60)
    assert_fails(proc, 2, needle)
    assert not out.exists()
