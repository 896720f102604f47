"""Draw docs/hardware-waveform.png: one term layer of the tutorial network in RTL.

    python hw/make_waveform_figure.py [OUT.png]

Exports test image 0 of the bundled sample through the tutorial checkpoint, replays the
layer b0.fc1 with a VCD (npsnn.hw.replay), and plots two windows of its waveform: the
first spike of t = 0 being accumulated (one weight column into 144 accumulators), and
the start of the post-processing sweep (each accumulator read, cleared, shifted, signed,
biased and range-checked, then written). Needs Icarus Verilog, cocotb and matplotlib.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from npsnn.datasets import load_cifar, sample_path
    from npsnn.golden import convert, export
    from npsnn.hw import replay
    from npsnn.hw.vcd import read_vcd
    from npsnn.train import load_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, _ = load_model(ROOT / "tutorials" / "assets" / "cifar10-p4-d48.npz")
        net = convert(model, load_cifar(sample_path(), "train")[0][:64], T=4)
        export(net, load_cifar(sample_path(), "test")[0][:1], 4, tmp / "v", split="test")
        r = replay(tmp / "v", layers="b0.fc1", vcd=str(tmp / "w.vcd"))
        assert r.ok, r.message
        names = ["clk_0", "op0.rd_addr", "op0.scan.ev_valid", "op0.agu.add_v",
                 "op0.agu.add_acc", "op0.agu.add_w", "op0.sw_active", "op0.wr_en",
                 "op0.wr_addr", "op0.wr_acc", "op0.wr_value"]
        tr = read_vcd(tmp / "w.vcd", names)
    rise = tr["clk_0"].times[tr["clk_0"].values == 1]
    period = int(np.median(np.diff(rise)))
    first_event = tr["op0.scan.ev_valid"].times[tr["op0.scan.ev_valid"].values == 1][0]
    sweep = tr["op0.sw_active"].times[tr["op0.sw_active"].values == 1][0]
    windows = [("accumulate: the first spike of t = 0 adds its weight column "
                "(stride 48) to 144 accumulators", first_event, names[:6]),
               ("post-process: read and clear each accumulator, rshift, sign, bias, range "
                "checks; write acc and value", sweep, [names[0]] + names[6:])]
    fig, axes = plt.subplots(13, 1, figsize=(10, 8), sharex=False,
                             gridspec_kw=dict(hspace=0.15, height_ratios=[1] * 6 + [0.9] + [1] * 6))
    axes[6].axis("off")                                   # a gap between the two windows
    row = 0
    for title, t0, sig in windows:
        row += row == 6
        grid = np.arange(t0 - 4 * period, t0 + 40 * period, period // 2)
        axes[row].set_title(title, fontsize=8, loc="left")
        for name in sig:
            ax = axes[row]
            v = tr[name].signed() if name in ("op0.wr_acc", "op0.wr_value") else tr[name].values
            trace = tr[name].__class__(name, tr[name].width, tr[name].times, v, tr[name].known)
            y = trace.at(grid)
            ax.step((grid - t0) / period, y, where="post", lw=1)
            ax.set_ylabel(name.split(".")[-1], rotation=0, ha="right", va="center", fontsize=7)
            ax.set_yticks([])
            ax.set_xlim(-4, 40)
            if tr[name].width > 1:
                ch = np.flatnonzero(np.diff(y) != 0)
                for i in ch[:: max(1, len(ch) // 8)]:
                    ax.text((grid[i + 1] - t0) / period, y[i + 1], str(y[i + 1]), fontsize=6)
            if name != sig[-1]:
                ax.set_xticklabels([])
            row += 1
        axes[row - 1].set_xlabel("clock cycles", fontsize=7)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "hardware-waveform.png")
