"""The corner-case vector suite (npsnn.golden.corner): coverage, files, refusal, command.

No simulator needed; the RTL replay of the suite is in test_hw_replay.py and the
mutants it must catch in test_hw_mutants.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from npsnn.golden import GoldenOverflowError, corner, run
from npsnn.golden.export import from_hex, to_hex
from npsnn.golden.reference import run_reference

from hw_tools import corner_suite


@pytest.fixture(scope="module")
def members():
    return corner.build_suite(T=4)


def test_every_rule_is_exercised(members):
    totals = {rule: sum(m[3][rule] for m in members.values()) for rule in corner.RULES}
    assert not [r for r, n in totals.items() if n == 0], totals
    for policy in ("saturate", "wrap"):         # every checked field overflows in its member
        cov = members[policy][3]
        assert all(cov[f"{policy}_{k}_{f}"] > 0 for k, f in corner.CHECKED), cov
    net, _, res, cov = members["error"]          # the error member never overflows ...
    assert res["events"] == [] and cov["error_upper_half"] > 0
    for width in ("acc", "mem"):                 # ... at the narrowest widths that hold it
        narrower = dict(net.bits, **{width: net.bits[width] - 1})
        with pytest.raises(GoldenOverflowError):
            run(corner.corner_network("error", bits=narrower), corner.corner_images(), 4)


def test_widths_and_shapes_are_the_awkward_ones(members):
    net = members["saturate"][0]
    assert net.bits == dict(weight=6, bias=10, acc=11, mem=10)     # no multiple of 4
    kinds = {op.get("kind", op["op"]) for op in net.ops}
    assert kinds >= {"conv", "conv_bitplane", "axis", "dense", "dense_signed_token",
                     "dense_token", "dense_shift_token", "add", "concat", "lif", "head"}
    assert {op["axis"] for op in net.ops if op.get("kind") == "axis"} == {"H", "W"}
    assert net.input_shape[0] != net.input_shape[1]                  # non-square
    convs = [op for op in net.ops if op.get("kind") == "conv"]
    assert {tuple(op["stride"]) for op in convs} == {(1, 1), (2, 2)}
    assert all(op["padding"] == [1, 1] for op in convs)
    signs = np.concatenate([net.params[op["sign"]] for op in net.ops if "sign" in op])
    assert set(signs.tolist()) == {-1, 0, 1}


def test_fast_path_equals_event_driven_reference(members):
    for policy, (net, images, res, _) in members.items():
        ref = run_reference(net, images, 4)
        for op in net.ops:
            for field, values in res["trace"][op["name"]].items():
                assert np.array_equal(ref["trace"][op["name"]][field], values), \
                    (policy, op["name"], field)


def test_suite_files_and_coverage_table():
    root = corner_suite()
    suite = json.loads((root / "suite.json").read_text())
    assert suite["format"] == "npsnn-golden-corner" and set(suite["members"]) == \
        {"saturate", "wrap", "error"}
    for name, m in suite["members"].items():
        manifest = json.loads((root / m["dir"] / "manifest.json").read_text())
        assert manifest["policy"] == name and manifest["bits"] == m["bits"]
        cov = manifest["meta"]["corner"]["coverage"]
        assert cov == {rule: per[name] for rule, per in suite["coverage"].items()}
    assert all(n > 0 for n in suite["totals"].values())


def test_hex_words_are_width_exact():
    """11-bit fields have 3 hex digits in two's complement of 11 bits: -4 is 7fc."""
    assert to_hex(np.array([-4, 1023, -1024]), 11, True).split() == ["7fc", "3ff", "400"]
    root = corner_suite() / "saturate"
    manifest = json.loads((root / "manifest.json").read_text())
    fields = manifest["vectors"]["fields"]
    with np.load(root / "vectors" / "img0003.npz") as z:
        for key in ("b0.fc1/acc", "b0.fc1/value", "b0.lif_t/v", "head/logits"):
            op, field = key.split("/")
            spec = fields[op][field]
            text = (root / "vectors_hex" / "img0003" / f"{op}.{field}.hex").read_text()
            words = [w for w in text.splitlines() if not w.startswith("//")]
            assert {len(w) for w in words} == {(spec["bits"] + 3) // 4}
            assert np.array_equal(from_hex(text, spec["bits"], True, spec["shape"]), z[key])
            if (z[key] < 0).any():
                v = int(z[key][z[key] < 0].ravel()[0])
                assert words[int(np.flatnonzero(z[key].ravel() == v)[0])] == \
                    format(v & ((1 << spec["bits"]) - 1), f"0{(spec['bits'] + 3) // 4}x")


def test_refuses_a_suite_with_an_unexercised_rule(tmp_path, monkeypatch):
    real = corner.coverage

    def without_ties(net, res, T):
        counts = real(net, res, T)
        counts["shift_right_tie_negative"] = 0
        return counts

    monkeypatch.setattr(corner, "coverage", without_ties)
    with pytest.raises(ValueError, match="shift_right_tie_negative"):
        corner.export_corner(tmp_path / "suite")
    assert not (tmp_path / "suite").exists()


def test_golden_corner_command(tmp_path, capsys):
    from npsnn.golden.cli import main
    assert main(["corner", "--out", str(tmp_path / "c"), "--no-hex"]) == 0
    out = capsys.readouterr().out
    assert "shift_right_tie_negative" in out and "wrap_head_logits" in out
    assert (tmp_path / "c" / "suite.json").is_file()
    assert not (tmp_path / "c" / "wrap" / "vectors_hex").exists()
    assert main(["corner", "--out", str(tmp_path / "d"), "--T", "1"]) == 2
    assert "T >= 2" in capsys.readouterr().err
