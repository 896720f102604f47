"""SpikingSSM neuron modes side by side: how long a training step takes with the SDN, with
BPTT and with SLTT, at sequence length L = 1024 (dev tool, numbers for docs/spikingssm.md).

    OPENBLAS_NUM_THREADS=1 python benchmarks/spikingssm_modes.py [--batch 50] [--d-model 64]
        [--layers 4] [--rounds 5] [--length 1024] [--neuron-shapes 1x64,8x64,50x64,50x512]

Two measurements per mode, each the median over ``--rounds`` rounds (modes alternate
within a round, so a busy machine slows all of them alike):

* **neuron**: the spiking neuron alone, forward + backward, on (B, H, L) inputs for each
  (B, H) of ``--neuron-shapes`` (SDN: the frozen SDN's prediction, the spikes and their
  surrogate gradient; BPTT: the recurrence and the backward through time; SLTT: the
  recurrence and the local backward). The loop's cost per step is mostly fixed overhead
  when B H is small and arithmetic when it is large, so the ratio depends on the size.
* **step**: a whole training step of the network (forward, cross-entropy, backward) with
  the given batch, width and depth, d_state 64, bidirectional, dropout 0.1.

It also prints the spike accuracy of the SDN on the step's first layer (its predicted
spikes against the exact recurrence on the same inputs) and the sparsity (fraction of
zeros) of every layer's spikes at initialisation. Run it with nothing else CPU-heavy on
the machine and ``nice``; state the thread count with the numbers.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from npsnn.models.sdn import load_sdn
from npsnn.models.spikingssm import SpikingSSM
from npsnn.ops.fft_conv import fft_conv_forward
from npsnn.ops.losses import cross_entropy_backward, cross_entropy_forward
from npsnn.ops.ssm_neuron import SSMNeuron, hard_reset_forward, spike_accuracy
from npsnn.perf.runtime import reuse_freed_memory

MODES = ("sdn", "bptt", "sltt")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--neuron-shapes", default="1x64,8x64,50x64,50x512",
                   help="comma-separated BxH sizes for the neuron-alone measurement")
    a = p.parse_args(argv)
    shapes = [tuple(int(v) for v in item.split("x")) for item in a.neuron_shapes.split(",")]
    reuse_freed_memory()
    rng = np.random.default_rng(0)
    B, H, L = a.batch, a.d_model, a.length
    sdn = load_sdn()
    neurons = {m: SSMNeuron(m, 0.125, predictor=sdn.predict) for m in MODES}
    labels = rng.integers(0, 10, B)
    x_seq = rng.normal(size=(B, 1, L)).astype(np.float32)
    models = {m: SpikingSSM(d_model=H, n_layers=a.layers, d_state=64, neuron=m, seed=0,
                            seq_len=L) for m in MODES}
    # neuron inputs like a layer's: a fresh layer's scaled SSM output on N(0, 1) sequences
    neuron_inputs = {}
    for b, h in shapes:
        probe = SpikingSSM(d_model=h, n_layers=1, d_state=64, neuron="bptt", seed=0,
                           seq_len=L)
        layer = probe.s4_layers[0]
        u = probe.encoder.forward(rng.normal(size=(b, 1, L)).astype(np.float32))
        neuron_inputs[(b, h)] = np.ascontiguousarray(
            fft_conv_forward(u, layer.kernel.forward(L), layer.params["D"][0])[0])

    def neuron_pass(m, shape):
        s = neurons[m].forward(neuron_inputs[shape])
        neurons[m].backward(np.ones_like(s))

    def step(m):
        model = models[m]
        logits = model.forward(x_seq)
        _, cache = cross_entropy_forward(logits[None], labels)
        model.zero_grad()
        model.backward(cross_entropy_backward(cache)[0])

    for m in MODES:                                     # warm-up (allocations, caches)
        for shape in shapes:
            neuron_pass(m, shape)
        step(m)
    keys = [(shape, m) for shape in shapes for m in MODES] + [("step", m) for m in MODES]
    times = {k: [] for k in keys}
    for r in range(a.rounds):
        order = MODES if r % 2 == 0 else MODES[::-1]
        for m in order:
            for shape in shapes:
                times[(shape, m)].append(_timed(lambda: neuron_pass(m, shape)))
            times[("step", m)].append(_timed(lambda: step(m)))
    med = {k: statistics.median(v) for k, v in times.items()}

    first = neuron_inputs[shapes[-1]]
    exact = hard_reset_forward(first, 0.125, need_grad=False)[0]
    predicted = neurons["sdn"].forward(first)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"L={L}, rounds={a.rounds} (medians)")
    print("neuron alone, forward + backward:")
    print("| (B, H) | " + " | ".join(MODES) + " | SDN / BPTT |")
    print("| --- | " + " | ".join("---" for _ in MODES) + " | --- |")
    for shape in shapes:
        cells = " | ".join(f"{med[(shape, m)] * 1e3:.1f} ms" for m in MODES)
        print(f"| {shape} | {cells} | {med[(shape, 'sdn')] / med[(shape, 'bptt')]:.2f} |")
    print(f"whole training step, B={B}, d_model={H}, layers={a.layers}, d_state 64, "
          f"bidirectional:")
    print("| mode | s/step | vs BPTT |")
    print("| --- | --- | --- |")
    for m in MODES:
        print(f"| {m} | {med[('step', m)]:.3f} | {med[('step', m)] / med[('step', 'bptt')]:.2f} |")
    print(f"SDN spike accuracy on a fresh layer's neuron input {shapes[-1]}: "
          f"{spike_accuracy(predicted, exact):.4f} (firing rate exact {exact.mean():.3f}, "
          f"SDN {predicted.mean():.3f})")
    for m in MODES:
        models[m].eval()
        models[m].forward(x_seq)
        print(f"sparsity at initialisation ({m}): "
              + ", ".join(f"{1 - r:.3f}" for r in models[m].firing_rates().values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
