"""Sparsity of a trained SpikingSSM: the fraction of zeros in every layer's spikes (dev tool).

    python benchmarks/spikingssm_sparsity.py --checkpoint runs/scifar-cpu/best.npz \
        --data ../shared/data/cifar10-jpeg-binary.tar.gz [--subset 2000] [--batch 100]

Runs the checkpoint in eval mode over the first ``--subset`` test sequences of sequential
CIFAR and averages, per layer, the firing rate of its neurons over every (sequence,
feature, step); sparsity is one minus it (the paper reports about 90% on average). Also
prints the top-1 accuracy on those sequences, and, for a model trained with SDN neurons,
how many of its spikes the exact recurrence would have fired alike (the SDN's accuracy on
the inputs the network really feeds its neurons, not the synthetic N(0, 1) ones).
``--neuron bptt`` evaluates the same weights with another neuron mode (e.g. a network
trained with the SDN, run with the exact recurrence).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from npsnn.datasets import open_source  # noqa: E402
from npsnn.models import build  # noqa: E402
from npsnn.ops.ssm_neuron import hard_reset_forward  # noqa: E402
from npsnn.train.checkpoint import load_model  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--subset", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--neuron", choices=("sdn", "bptt", "sltt"),
                   help="run the weights with this neuron mode [default: the checkpoint's]")
    a = p.parse_args(argv)
    model, _ = load_model(a.checkpoint)
    if a.neuron is not None and a.neuron != model.config["neuron"]:
        state = model.state_dict()
        model = build(dict(model.config, neuron=a.neuron), dtype=model.dtype)
        model.load_state_dict(state)
    model.eval()
    source = open_source("scifar", a.data)
    samples, labels = source.split("test")
    samples, labels = samples[:a.subset], labels[:a.subset]
    names = list(model.firing_rates())
    rate_sum = np.zeros(len(names))
    agree, total, correct = 0, 0, 0
    sdn = model.config["neuron"] == "sdn"
    for i in range(0, len(samples), a.batch):
        x = source.eval_batch(samples[i:i + a.batch], dtype=model.dtype)
        seen = []                 # (input, spikes) of every neuron layer in this pass
        for layer in model.s4_layers:
            def recording(y, forward=type(layer.neuron).forward.__get__(layer.neuron)):
                s = forward(y)
                seen.append((y, s))
                return s
            layer.neuron.forward = recording
        logits = model.forward(x)
        for layer in model.s4_layers:
            del layer.neuron.forward                        # back to the class's method
        if sdn:
            for y, s_sdn in seen:
                s_exact = hard_reset_forward(y, model.config["tau"], need_grad=False)[0]
                agree += int(np.sum(s_sdn == s_exact))
                total += s_exact.size
        rate_sum += np.array(list(model.firing_rates().values())) * len(x)
        correct += int(np.sum(logits.argmax(axis=1) == labels[i:i + a.batch]))
    rates = rate_sum / len(samples)
    print(f"{a.checkpoint} with {model.config['neuron']} neurons: {len(samples)} test "
          f"sequences, top-1 {100 * correct / len(samples):.2f}%")
    print("| layer | firing rate | sparsity |")
    print("| --- | --- | --- |")
    for name, r in zip(names, rates):
        print(f"| {name} | {r:.4f} | {100 * (1 - r):.2f}% |")
    print(f"| mean | {rates.mean():.4f} | {100 * (1 - rates.mean()):.2f}% |")
    if sdn:
        print(f"SDN spikes equal to the exact recurrence's on the network's own neuron inputs: "
              f"{100 * agree / total:.3f}% of {total:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
