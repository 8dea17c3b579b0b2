"""Time this project's NumPy engine against PyTorch (CPU) and scikit-learn on the same MNIST training task.

Every implementation trains the same architectures (784-10, 784-64-10, 784-64-64-10, ReLU)
with batches of 4, learning rate 0.001 and momentum 0.9 for whole epochs over the same
58,000 "normal"-normalized training images, and is scored on the same 6,000 test images.

Each implementation x architecture runs in its own worker subprocess, so that
 * PyTorch's thread count (process-wide) can differ between workers,
 * each row's peak memory (ru_maxrss) is its own: data, library and model, nothing else,
 * torch and scikit-learn are imported only by the workers that use them.
The workers wait for commands on stdin, and this process runs them one at a time in a
round-robin: epoch 1 of every worker, then epoch 2 of every worker (in a rotated order)...
so a noisy spell on a shared machine hits all implementations alike and the ratios hold.
Only one worker computes at any moment; the others sleep on a pipe.

Then it times `predict_proba` of the trained 784-64-64-10 network on the test images and
measures the peak RSS of a whole one-epoch training run (loading, training, evaluation)
in a fresh process. The report is Markdown on stdout; progress goes to stderr.

Usage (from the repository root, MNIST_DIR pointing at the four IDX files):
    python benchmarks/compare_frameworks.py                  # 3 epochs, all: 3-10 minutes
    python benchmarks/compare_frameworks.py --quick          # smoke run on 4,000 images
    python benchmarks/compare_frameworks.py --archs 784-64-64-10 --only ours,torch-1
Needs requirements-bench.txt (torch, scikit-learn); the project itself does not.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the engine's modules live at the repository root

# ---- the task, one visible block ------------------------------------------------------
ARCHS = {"784-10": [784, 10], "784-64-10": [784, 64, 10], "784-64-64-10": [784, 64, 64, 10]}
IMPLS = {  # key: label in the report
    "ours": "ours (NumPy)",
    "torch-1": "PyTorch CPU, 1 thread",
    "torch": "PyTorch CPU, default threads",
    "sklearn": "scikit-learn MLPClassifier",
}
BATCH_SIZE = 4
LEARNING_RATE = 0.001
MOMENTUM = 0.9
QUICK_LIMIT = 4000           # --quick: training images (1,000 steps an epoch)
EPOCH_CAP_S = 30.0           # a PyTorch epoch stops here and is extrapolated (see TorchModel)
PREDICT_REPEATS = 50         # predict_proba timings, median taken
TARGETS = {"torch": 6.0, "sklearn": 4.0}  # ours on 784-64-64-10 at least this many times faster
PREDICT_TARGET_S = 0.2
FULL_RUN_TARGET_MB = 400


# ======================================================================================
# Workers: one implementation x one architecture each, driven through stdin/stdout.
# ======================================================================================

def _maxrss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(args):
    import numpy as np

    import mnist_loader
    limit = QUICK_LIMIT if args.quick else None
    return mnist_loader.load_data("normal", np.random.default_rng(args.seed),
                                  data_dir=args.data_dir, limit=limit)


def _our_initial_network(sizes, seed):
    """The engine's network, xavier-initialized from seed + 1; torch starts from its weights."""
    import numpy as np

    from network import Network
    rng = np.random.default_rng(seed + 1)
    return Network(sizes, "relu", "xavier", rng), rng


class OursModel:
    """This project's engine, trained exactly as training.train trains it."""

    def __init__(self, sizes, data, seed, threads):
        import optim
        import training
        self.train_epoch = training.train_epoch
        self.data = data
        self.net, self.rng = _our_initial_network(sizes, seed)
        self.opt = optim.Momentum(MOMENTUM)

    def epoch(self, cap_s: float) -> int:
        """One epoch; returns the number of steps done (here always all of them)."""
        self.train_epoch(self.net, self.data.train.x, self.data.train.y, self.opt,
                         LEARNING_RATE, self.rng, batch_size=BATCH_SIZE)
        return len(self.data.train.x) // BATCH_SIZE

    def accuracy(self) -> float:
        return self.net.evaluate(self.data.test.x, self.data.test.y)[1]

    def predict(self):
        return self.net.predict_proba(self.data.test.x)

    @staticmethod
    def info() -> dict:
        import numpy as np
        return {"numpy": np.__version__}


class TorchModel:
    """PyTorch written the way its tutorials write it (the CIFAR-10 classifier tutorial
    also uses batch 4, lr 0.001, momentum 0.9): nn.Sequential, CrossEntropyLoss,
    optim.SGD, a torch.randperm per epoch, zero_grad / backward / step, loss.item().

    With more than one thread on a busy 2-core machine its thread pool can stall at
    every step (seen: 35-60 s epochs instead of 2-5 s), so an epoch stops after cap_s
    seconds and the driver extrapolates its time from the steps done."""

    def __init__(self, sizes, data, seed, threads):
        import torch
        from torch import nn
        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        layers = []
        for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(m, n))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        # The same xavier start as ours (torch's own default init is kaiming-uniform).
        net, _ = _our_initial_network(sizes, seed)
        linears = [layer for layer in self.model if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for lin, w in zip(linears, net.weights):
                lin.weight.copy_(torch.from_numpy(w.T.copy()))  # ours (in, out), torch (out, in)
                lin.bias.zero_()
        self.x = torch.from_numpy(data.train.x)  # shares memory with the NumPy arrays
        self.y = torch.from_numpy(data.train.y)
        self.x_test = torch.from_numpy(data.test.x)
        self.y_test = torch.from_numpy(data.test.y)
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)

    def epoch(self, cap_s: float) -> int:
        torch, model, opt, loss_fn = self.torch, self.model, self.opt, self.loss_fn
        deadline = time.perf_counter() + cap_s
        model.train()
        n = len(self.x) - len(self.x) % BATCH_SIZE  # drop a last partial batch, as ours does
        perm = torch.randperm(len(self.x))
        running_loss = 0.0
        for i in range(0, n, BATCH_SIZE):
            idx = perm[i:i + BATCH_SIZE]
            inputs, labels = self.x[idx], self.y[idx]
            opt.zero_grad()
            loss = loss_fn(model(inputs), labels)
            loss.backward()
            opt.step()
            running_loss += loss.item()
            if i % 1024 == 0 and time.perf_counter() > deadline:  # every 256 steps
                return i // BATCH_SIZE + 1
        return n // BATCH_SIZE

    def accuracy(self) -> float:
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            pred = self.model(self.x_test).argmax(dim=1)
        return float((pred == self.y_test).float().mean())

    def predict(self):
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            return torch.softmax(self.model(self.x_test), dim=1)

    def info(self) -> dict:
        torch = self.torch
        config = torch.__config__.show()
        blas = next((line.split("BLAS_INFO=")[1].split(",")[0]
                     for line in config.splitlines() if "BLAS_INFO=" in line), "?")
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_blas": blas, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


class SklearnModel:
    """MLPClassifier with the same SGD settings; one partial_fit call is one epoch: it
    shuffles the indices itself (shuffle=True) and walks minibatches of batch_size.
    Its initialization is its own Glorot-uniform one (public API gives no way to set it)."""

    def __init__(self, sizes, data, seed, threads):
        import numpy as np
        from sklearn.neural_network import MLPClassifier
        self.np = np
        self.data = data
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu",
                                 solver="sgd", batch_size=BATCH_SIZE, learning_rate="constant",
                                 learning_rate_init=LEARNING_RATE, momentum=MOMENTUM,
                                 nesterovs_momentum=False, alpha=0.0, shuffle=True,
                                 random_state=seed)
        self.classes = np.arange(sizes[-1])
        n = len(data.train.x) - len(data.train.x) % BATCH_SIZE
        self.x, self.y = data.train.x[:n], data.train.y[:n]

    def epoch(self, cap_s: float) -> int:
        self.clf.partial_fit(self.x, self.y, classes=self.classes)
        return len(self.x) // BATCH_SIZE

    def accuracy(self) -> float:
        return float(self.clf.score(self.data.test.x, self.data.test.y))

    def predict(self):
        return self.clf.predict_proba(self.data.test.x)

    @staticmethod
    def info() -> dict:
        import sklearn
        return {"sklearn": sklearn.__version__}


MODELS = {"ours": (OursModel, 0), "torch-1": (TorchModel, 1), "torch": (TorchModel, 0),
          "sklearn": (SklearnModel, 0)}


def run_worker(args) -> None:
    """Serve commands from stdin, one JSON reply per line on the real stdout."""
    import warnings
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the replies
    warnings.simplefilter("ignore")  # e.g. sklearn's ConvergenceWarning after each partial_fit

    def reply(**kw):
        out.write(json.dumps(kw) + "\n")

    start = time.perf_counter()
    data = _load(args)
    load_s = time.perf_counter() - start
    cls, threads = MODELS[args.worker]
    model = cls(ARCHS[args.arch], data, args.seed, threads)
    steps = len(data.train.x) // BATCH_SIZE
    reply(ready=True, load_s=load_s, steps=steps, info=model.info())
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "epoch":
            t = time.perf_counter()
            done = model.epoch(float(rest[0]))
            seconds = time.perf_counter() - t
            # a stopped epoch: its time for all the steps, assuming the rate it had
            reply(seconds=seconds * steps / done, partial=done < steps)
        elif cmd == "eval":
            reply(accuracy=model.accuracy())
        elif cmd == "predict":
            model.predict()  # warm-up: first-call allocations
            times = []
            for _ in range(int(rest[0])):
                t = time.perf_counter()
                model.predict()
                times.append(time.perf_counter() - t)
            reply(median=statistics.median(times), min=min(times))
        elif cmd == "quit":
            reply(maxrss_mb=_maxrss_mb())
            return


def run_full(args) -> None:
    """A whole run of the 2-hidden net, as a user's would be: load, 1 epoch, evaluate all splits."""
    import numpy as np

    import optim
    import training
    from network import Network
    start = time.perf_counter()
    data = _load(args)
    rng = np.random.default_rng(args.seed + 1)
    net = Network(ARCHS["784-64-64-10"], "relu", "xavier", rng)
    records = list(training.train(net, data, epochs=1, optimizer=optim.Momentum(MOMENTUM), rng=rng,
                                  lr=LEARNING_RATE, batch_size=BATCH_SIZE, progress=False))
    print(json.dumps({"maxrss_mb": _maxrss_mb(), "seconds": time.perf_counter() - start,
                      "test_accuracy": records[-1].test_accuracy}))


# ======================================================================================
# The driver.
# ======================================================================================

@dataclass
class Worker:
    impl: str
    arch: str
    proc: subprocess.Popen
    ready: dict = field(default_factory=dict)
    seconds: list = field(default_factory=list)
    capped: bool = False  # an epoch hit the cap: time extrapolated, no further epochs
    accuracy: float | None = None
    maxrss_mb: float | None = None
    predict: dict | None = None

    def send(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.receive()

    def receive(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.impl} {self.arch} died (exit code {self.proc.wait()}); "
                               "see its error above")
        return json.loads(line)


def _worker_argv(args, *extra) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--seed", str(args.seed), *extra]
    if args.quick:
        argv.append("--quick")
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    return argv


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info(workers: list[Worker]) -> list[str]:
    """CPU, cores, library versions and BLAS, as Markdown bullet lines."""
    import numpy as np
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    numpy_blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    try:  # which OpenBLAS kernel was picked at run time (DYNAMIC_ARCH builds choose by CPU)
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            numpy_blas += ", {} core, {} threads".format(pools[0].get("architecture", "?"),
                                                         pools[0].get("num_threads", "?"))
    except ImportError:
        pass
    infos = {}
    for w in workers:
        infos.update(w.ready.get("info", {}))
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOTO"))}

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    lines = [
        f"- CPU: {cpu}, {cores} cores available ({os.cpu_count()} logical CPUs)",
        f"- Python {platform.python_version()}, NumPy {np.__version__} "
        f"(BLAS: {numpy_blas}), PyTorch {version('torch')}, scikit-learn {version('scikit-learn')}",
    ]
    if "torch_blas" in infos:
        lines.append(f"- PyTorch BLAS: {infos['torch_blas']}, CPU capability "
                     f"{infos['torch_cpu_capability']}")
    lines.append("- Thread environment: " + (", ".join(f"{k}={v}" for k, v in sorted(env.items()))
                                              or "no OPENBLAS_*/OMP_*/MKL_* variables set"))
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the median is reported")
    parser.add_argument("--archs", default=",".join(ARCHS),
                        help=f"comma-separated, from {', '.join(ARCHS)}")
    parser.add_argument("--only", default=",".join(IMPLS),
                        help=f"comma-separated implementations, from {', '.join(IMPLS)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run on {QUICK_LIMIT:,} training images")
    parser.add_argument("--epoch-cap", type=float, default=EPOCH_CAP_S,
                        help="seconds after which a PyTorch epoch stops and its time is extrapolated "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="the MNIST files (default: $MNIST_DIR)")
    parser.add_argument("--worker", choices=[*IMPLS, "full-run"], help=argparse.SUPPRESS)
    parser.add_argument("--arch", choices=list(ARCHS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "full-run":
        return run_full(args)
    if args.worker:
        return run_worker(args)

    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    impls = [i.strip() for i in args.only.split(",") if i.strip()]
    for name, allowed in ((archs, ARCHS), (impls, IMPLS)):
        unknown = [x for x in name if x not in allowed]
        if unknown:
            parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    wall = time.perf_counter()

    # Start every worker at once (loading overlaps; nothing is timed yet), then wait for all.
    workers = []
    for arch in archs:
        for impl in impls:
            proc = subprocess.Popen(_worker_argv(args, "--worker", impl, "--arch", arch),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            workers.append(Worker(impl, arch, proc))
    try:
        for w in workers:
            w.ready = w.receive()
        steps = workers[0].ready["steps"]
        _log(f"{len(workers)} workers ready; {steps:,} steps an epoch")

        # Round-robin: one epoch of each worker per round, starting one later each round.
        for epoch in range(args.epochs):
            order = workers[epoch % len(workers):] + workers[:epoch % len(workers)]
            for w in order:
                if w.capped:
                    continue
                answer = w.send(f"epoch {args.epoch_cap}")
                w.seconds.append(answer["seconds"])
                w.capped = answer["partial"]
                _log(f"epoch {epoch + 1}/{args.epochs}  {w.impl:8s} {w.arch:13s} {w.seconds[-1]:7.2f} s"
                     + ("  (stopped at the cap, extrapolated)" if w.capped else ""))
        for w in workers:
            w.accuracy = w.send("eval")["accuracy"]
            if w.arch == "784-64-64-10":
                w.predict = w.send(f"predict {PREDICT_REPEATS}")
        for w in workers:
            w.maxrss_mb = w.send("quit")["maxrss_mb"]
            w.proc.wait()
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()

    full = None
    if "ours" in impls:
        _log("one whole training run of 784-64-64-10 (1 epoch) in a fresh process ...")
        done = subprocess.run(_worker_argv(args, "--worker", "full-run"), check=True,
                              stdout=subprocess.PIPE, text=True)
        full = json.loads(done.stdout.strip().splitlines()[-1])

    report(args, workers, steps, full, time.perf_counter() - wall)


def report(args, workers: list[Worker], steps: int, full: dict | None, wall: float) -> None:
    """Print the Markdown tables, the targets and the machine."""
    ms = {(w.impl, w.arch): 1000 * statistics.median(w.seconds) for w in workers}
    data = f"{QUICK_LIMIT:,} (--quick)" if args.quick else "58,000"
    print(f"### Training speed: {data} training images, batch {BATCH_SIZE} ({steps:,} steps an epoch), "
          f"lr {LEARNING_RATE}, momentum {MOMENTUM}, median of {args.epochs} epoch(s)\n")
    print("| implementation | architecture | ms / epoch | µs / step | time vs ours "
          f"| test accuracy after {args.epochs} epoch(s) | peak RSS (MB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for w in sorted(workers, key=lambda w: (list(ARCHS).index(w.arch), list(IMPLS).index(w.impl))):
        t = ms[w.impl, w.arch]
        ours = ms.get(("ours", w.arch))
        ratio = f"{t / ours:.2f}×" if ours else "n/a"
        spread = f" ({1000 * min(w.seconds):.0f}–{1000 * max(w.seconds):.0f})" if len(w.seconds) > 1 else ""
        mark = " †" if w.capped else ""
        print(f"| {IMPLS[w.impl]} | {w.arch} | {t:,.0f}{spread}{mark} | {1000 * t / steps:.1f} | {ratio} "
              f"| {100 * w.accuracy:.2f} %{mark} | {w.maxrss_mb:.0f} |")
    print("\nms / epoch: median (min–max). Peak RSS: each row is its own process holding the "
          "data set, its library and one model. All start from the same xavier weights except "
          "scikit-learn, which uses its own Glorot-uniform initialization.")
    if any(w.capped for w in workers):
        print(f"† An epoch took longer than {args.epoch_cap:g} s and was stopped there: its time is "
              "extrapolated from the steps it did, the worker ran no further epochs, and its accuracy "
              "is after fewer steps than the others'.")
    print()

    predicts = [w for w in workers if w.predict]
    if predicts:
        print(f"### Scoring the 6,000 test images with the trained 784-64-64-10 network "
              f"(median of {PREDICT_REPEATS})\n")
        print("| implementation | call | ms (median) | ms (fastest) |")
        print("| --- | --- | ---: | ---: |")
        calls = {"ours": "net.predict_proba(test.x)", "torch-1": "softmax(model(x)) under no_grad",
                 "torch": "softmax(model(x)) under no_grad", "sklearn": "clf.predict_proba(test.x)"}
        for w in sorted(predicts, key=lambda w: list(IMPLS).index(w.impl)):
            print(f"| {IMPLS[w.impl]} | `{calls[w.impl]}` | {1000 * w.predict['median']:.1f} "
                  f"| {1000 * w.predict['min']:.1f} |")
        print()

    print("### Targets\n")
    big = "784-64-64-10"
    ours = ms.get(("ours", big))
    for impl, target in (("torch-1", TARGETS["torch"]), ("torch", TARGETS["torch"]),
                         ("sklearn", TARGETS["sklearn"])):
        if ours and (impl, big) in ms:
            r = ms[impl, big] / ours
            mark = " (†: extrapolated)" if any(w.capped for w in workers if (w.impl, w.arch) == (impl, big)) else ""
            print(f"- {big} epoch, ours vs {IMPLS[impl]}: {r:.2f}× faster{mark} "
                  f"(target ≥ {target:g}×): {'met' if r >= target else 'MISSED'}")
    ours_w = next((w for w in predicts if w.impl == "ours"), None)
    if ours_w:
        s = ours_w.predict["median"]
        print(f"- predict_proba on 6,000 test images: {1000 * s:.1f} ms (min {1000 * ours_w.predict['min']:.1f}) "
              f"(target < {1000 * PREDICT_TARGET_S:.0f} ms): {'met' if s < PREDICT_TARGET_S else 'MISSED'}")
    if full:
        mb = full["maxrss_mb"]
        print(f"- peak RSS of a whole 1-epoch 784-64-64-10 run (load, train, evaluate train/val/test): "
              f"{mb:.0f} MB in {full['seconds']:.1f} s, test accuracy {100 * full['test_accuracy']:.2f} % "
              f"(target ≤ {FULL_RUN_TARGET_MB} MB): {'met' if mb <= FULL_RUN_TARGET_MB else 'MISSED'}")
    print("\n### Machine\n")
    for line in machine_info(workers):
        print(line)
    print(f"\nWhole benchmark: {wall / 60:.1f} minutes.")


if __name__ == "__main__":
    main()
