"""Time what the --draw window does while the pen moves, on the shipped model.

    python benchmarks/draw_update.py [--repeats 9] [--run saved_files/best-model] [--save FILE.png]

Prints the median milliseconds (and the min and max) of:
  stamp      inking one segment of a stroke into the 280x280 canvas (every mouse event)
  see        photo.preprocess of the canvas + the network's probabilities
  update     DrawWindow.update without the redraw: see, then the 28x28 panel and the bars set
  redraw     a full draw of the window's figure on the Agg canvas (what a GUI redraw costs;
             in a window, draw_idle runs it once per pass of the event loop)
  pad blit   showing new ink between updates: the pad alone drawn over the last full drawing
and the updates a second that update + redraw allow, against the 10 a second asked for.
The drawing is the 7 of tests/test_windows.py; --save writes the window with it (the
README's picture of --draw).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import predict  # noqa: E402
from kit import windows  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--run", type=Path, default=ROOT / "saved_files" / "best-model")
    p.add_argument("--save", type=Path, default=None, help="write the window with the 7 to this PNG")
    args = p.parse_args()

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    loaded = predict.open_run(SimpleNamespace(run=args.run, runs_dir=None, weights="best"))
    fig = Figure(figsize=(11, 4.6))
    FigureCanvasAgg(fig)
    pad = windows.DrawWindow(fig, predict.drawing_reader(loaded), name=predict.run_title(loaded))
    points = [(75 + 130 * t, 55) for t in np.linspace(0, 1, 12)] + \
             [(205 - 85 * t, 55 + 180 * t) for t in np.linspace(0, 1, 12)[1:]]
    for a, b in zip(points, points[1:]):
        windows.stamp_segment(pad.canvas, a, b)
    segment = (points[3], points[4])
    fig.canvas.mpl_connect("draw_event", pad.on_draw)
    fig.canvas.draw()

    draw_idle = fig.canvas.draw_idle
    fig.canvas.draw_idle = lambda: None   # Agg draws at once on draw_idle; a GUI defers it
    rows = {
        "stamp": timed(lambda: windows.stamp_segment(pad.canvas, *segment), args.repeats * 20),
        "see": timed(lambda: pad.see(pad.canvas), args.repeats),
        "update": timed(pad.update, args.repeats),
        "redraw": timed(fig.canvas.draw, args.repeats),
        "pad blit": timed(pad._redraw_pad, args.repeats),
    }
    fig.canvas.draw_idle = draw_idle
    if args.save is not None:
        pad.update()
        from kit.plots import save_figure
        save_figure(fig, args.save)
        print(f"Saved the window, predicting {pad.prediction}, to {args.save}")
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"{'':9}{'median ms':>10}{'min':>8}{'max':>8}")
    for name, ms in rows.items():
        print(f"{name:9}{statistics.median(ms):10.2f}{min(ms):8.2f}{max(ms):8.2f}")
    per_update = statistics.median(rows["update"]) + statistics.median(rows["redraw"])
    print(f"update + redraw: {per_update:.1f} ms, so at most {1000 / per_update:.0f} updates a second "
          f"(the window asks for one every {1000 * windows.UPDATE_INTERVAL:.0f} ms: "
          f"{1 / windows.UPDATE_INTERVAL:.1f} a second; at least 10 are required)")


if __name__ == "__main__":
    main()
