"""How well does the SDN shipped with npsnn predict the exact neuron? (dev tool)

    python benchmarks/spikingssm_sdn.py [--sequences 1000] [--seed 7]
    ~/.venvs/npsnn-torch/bin/python benchmarks/spikingssm_sdn.py \
        --official 'mem_pred_d8k8_c3(relu(c2(c1(x))+c1(x)))_125.pkl'

Draws ``--sequences`` fresh input sequences x ~ N(0, 1) of length 1024 (the SDN's training
distribution, a seed it was not trained on), runs the exact hard-reset recurrence with
tau = 0.125 (:func:`npsnn.ops.ssm_neuron.hard_reset_forward`) and reports for the shipped
SDN (:func:`npsnn.models.sdn.load_sdn`) the official metric -- the fraction of (sequence,
step) positions where H(m^ + x - 1) equals the exact spike -- plus the recall and precision
of its spikes and the mean absolute membrane error. With ``--official PATH`` (the
TorchScript checkpoint of shenshuaijie/SDN, ``src/models/spike/``; needs torch, so run it
in the torch venv) the published SDN is measured on the same sequences.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from npsnn.models.sdn import evaluate_sdn, load_sdn, synthetic_batch  # noqa: E402


def _row(name, m):
    print(f"| {name} | {100 * m['spike_accuracy']:.3f}% | {100 * m['spike_recall']:.2f}% | "
          f"{100 * m['spike_precision']:.2f}% | {m['mae']:.4f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--official", metavar="PATH", help="the official TorchScript SDN (tau 0.125)")
    a = p.parse_args(argv)
    x, membrane, spikes = synthetic_batch(np.random.default_rng(a.seed), a.sequences, 1024,
                                          0.125)
    print(f"{a.sequences} sequences x 1024 steps, x ~ N(0, 1), tau 0.125, seed {a.seed}; "
          f"exact firing rate {spikes.mean():.4f}")
    print("| SDN | spike accuracy | spike recall | spike precision | mean abs membrane error |")
    print("| --- | --- | --- | --- | --- |")
    sdn = load_sdn()
    _row(f"npsnn (shipped, {sdn.meta['recipe']['steps']} steps)",
         evaluate_sdn(sdn, x, membrane, spikes))
    if a.official:
        import torch
        official = torch.jit.load(a.official).eval()

        class Official:
            @staticmethod
            def predict(seq):
                with torch.no_grad():
                    return official(torch.from_numpy(seq[:, None])).numpy().reshape(seq.shape)

        _row("official checkpoint", evaluate_sdn(Official, x, membrane, spikes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
