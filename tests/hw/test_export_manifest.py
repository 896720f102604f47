"""What docs/golden-model.md section 8 states about an export, checked: the manifest's
dataset split and per-parameter signed flags, width-exact hex words, and the exit codes of
``golden verify`` (every row of the table). No simulator needed."""
from __future__ import annotations

import json
import shutil

import numpy as np

from npsnn.golden.cli import main as golden
from npsnn.golden.export import to_hex

from hw_tools import corner_suite, scratch, tutorial_export


def test_manifest_records_split_and_signed_parameters():
    manifest = json.loads((tutorial_export(False) / "manifest.json").read_text())
    assert manifest["vectors"]["split"] == "test"
    assert all(p["signed"] is True for p in manifest["params"].values())
    corner = json.loads((corner_suite() / "wrap" / "manifest.json").read_text())
    assert corner["vectors"]["split"] is None


def test_width_exact_hex_examples():
    assert to_hex(np.array([-4, 1023, -1024]), 11).split() == ["7fc", "3ff", "400"]
    assert to_hex(np.array([-1]), 2).split() == ["3"]
    assert to_hex(np.array([-1]), 10).split() == ["3ff"]


def test_verify_exit_codes(capsys):
    ours = corner_suite() / "error"
    work = scratch("verify")
    assert golden(["verify", "--ours", str(ours), "--theirs", str(ours)]) == 0
    assert capsys.readouterr().out.startswith("all ")
    # 1: a value differs (in the npz dump)
    theirs = work / "changed"
    shutil.copytree(ours, theirs)
    with np.load(theirs / "vectors" / "img0002.npz") as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["b0.fc1/value"][1, 0, 1, 3] += 1
    np.savez(theirs / "vectors" / "img0002.npz", **arrays)
    assert golden(["verify", "--ours", str(ours), "--theirs", str(theirs)]) == 1
    out = capsys.readouterr().out
    assert "first mismatch: image 2 (img0002), layer 'b0.fc1', field 'value', t=1" in out
    # 1: a hex dump lacks one field's file
    hexonly = work / "hexonly"
    shutil.copytree(ours / "vectors_hex", hexonly / "vectors_hex")
    (hexonly / "vectors_hex" / "img0000" / "head.logits.hex").unlink()
    assert golden(["verify", "--ours", str(ours), "--theirs", str(hexonly)]) == 1
    assert "is missing from" in capsys.readouterr().out
    # 2: bad input
    bad = work / "bad"
    shutil.copytree(ours / "vectors_hex", bad / "vectors_hex")
    path = bad / "vectors_hex" / "img0000" / "s0.embed.acc.hex"
    path.write_text(path.read_text() + "000\n")                  # one word too many
    assert golden(["verify", "--ours", str(ours), "--theirs", str(bad)]) == 2
    assert "words" in capsys.readouterr().err
    path.write_text("// not hex\nzz\n")
    assert golden(["verify", "--ours", str(ours), "--theirs", str(bad)]) == 2
    assert golden(["verify", "--ours", str(ours), "--theirs", str(work / "none")]) == 2
    assert golden(["verify", "--ours", str(work), "--theirs", str(ours)]) == 2
    assert "not a golden export" in capsys.readouterr().err
