"""DEV-ONLY: write the small ``torch.save`` files in tests/data/pth/ that tests/io/test_pth.py reads.

Run once with the PyTorch + SpikingJelly venv (torch is never a dependency of npsnn or of
the default tests; the files it writes are committed):

    ~/.venvs/npsnn-torch/bin/python tests/generators/make_pth_files.py

It uses the independent reference model in ../shared/perf/torch_reference/torch_smlpnet.py
(tiny config: dim 6, patch 4, image 16, depths [1, 1], SPE, 10 classes) and writes:

    bare_state_dict.pth     torch.save(state_dict)                  (a)
    train_checkpoint.pth    the mixer-snn train.py layout: model, optimizer (SGD with
                            momentum buffers), lr_scheduler (cosine), epoch, args
                            (argparse.Namespace), max_test_acc1, scaler            (b)
    malicious.pth           two tensors plus an object whose unpickling would run
                            os.system("touch npsnn-pth-pwned") in the current folder (c)
    dtypes_strides.pth      transposed / offset / stepped / expanded views, float16,
                            bfloat16, float64, integer and bool tensors, uint16 (the
                            _rebuild_tensor_v3 path), a 0-d and an empty tensor,
                            two views of one storage, an nn.Parameter             (d)
    dtypes_strides_bigendian.pth   (d) rewritten with byteorder "big" and byte-swapped
                            storages; checked here to load equal in torch itself
    dtypes_strides_legacy.pth      (d) in the pre-1.6 stream format, without uint16
                            (which torch itself cannot read back from that format)
    bare_state_dict_legacy.pth     (a) in the pre-1.6 stream format
    whole_model.pth         torch.save(model): pickles module classes (must be refused)
    torchscript.pt          torch.jit.save of a tiny Linear (must be refused)
    expected.npz            the arrays (a)/(b) must equal, keyed by official names
    expected_logits.npz     eval-mode logits of that model for two images, T=4
    expected_dtypes.npz     the arrays (d) must equal (bfloat16 as float32)
    config.json             the model config of (a)/(b)
"""
import argparse
import collections
import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[1]            # tests/ (this file: tests/generators/)
OUT = TESTS / "data" / "pth"
REF = TESTS.parents[1] / "shared" / "perf" / "torch_reference"
CONFIG = dict(in_channels=3, dim=6, alpha=3, num_classes=10, patch_size=4, image_size=16,
              depths=[1, 1], spe=True)
MARKER = "npsnn-pth-pwned"


class Evil:
    """Unpickling this calls os.system (the attack a restricted unpickler must stop)."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def official_state_dict(R, model):
    """OrderedDict of torch tensors with official keys, with a _metadata like the real one."""
    arrays = R.state_arrays(model)
    sd = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in arrays.items())
    sd._metadata = collections.OrderedDict(
        (R.official_key(k + ".").rstrip("."), dict(v))
        for k, v in model.state_dict()._metadata.items())
    return sd, arrays


def trained_model(R):
    """The tiny model after one SGD step, so BN stats and momentum buffers are non-trivial."""
    from spikingjelly.activation_based import functional
    torch.manual_seed(0)
    model = R.build(**CONFIG)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=300)
    x = torch.rand(2, 3, 3, 16, 16)
    y = torch.tensor([1, 7, 3])
    loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
    loss.backward()
    opt.step()
    sched.step()
    functional.reset_net(model)
    return model, opt, sched


def dtype_tensors():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 7, generator=g)
    shared = torch.arange(24, dtype=torch.float32)
    t = collections.OrderedDict()
    t["contiguous"] = a
    t["transposed"] = a.t()                       # stride (1, 7)
    t["offset_view"] = a[1:4, 2:6]                # offset 9, stride (7, 1)
    t["stepped"] = a[::2, 1::3]                   # stride (14, 3), offset 1
    t["expanded"] = torch.arange(3.0).expand(4, 3)  # stride (0, 1)
    t["conv_permuted"] = torch.randn(2, 3, 4, 5, generator=g).permute(0, 2, 3, 1)
    t["float16"] = (a * 10).half()
    t["bfloat16"] = (a * 10).bfloat16()
    t["float64"] = a.double() / 3
    t["int64_scalar"] = torch.tensor(12345678901)
    t["float_scalar"] = torch.tensor(2.5)
    t["int32"] = torch.arange(-5, 5, dtype=torch.int32)
    t["int16"] = torch.arange(-5, 5, dtype=torch.int16).reshape(2, 5).t()
    t["int8"] = torch.arange(-5, 5, dtype=torch.int8)
    t["uint8"] = torch.arange(250, 256, dtype=torch.int32).to(torch.uint8)
    t["bool"] = torch.tensor([[True, False, True], [False, False, True]]).t()
    t["uint16"] = torch.tensor([1, 2, 65535], dtype=torch.int32).to(torch.uint16)
    t["empty"] = torch.zeros(0, 3)
    t["shared_a"] = shared[2:8]
    t["shared_b"] = shared.view(4, 6)[:, 1]
    t["parameter"] = torch.nn.Parameter(torch.randn(3, 2, generator=g))
    expected = {k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach())
                .contiguous().numpy().copy() for k, v in t.items()}
    return t, expected


def storage_dtypes(data_pkl: bytes) -> dict:
    """{storage key: numpy dtype of its elements}, read from a data.pkl's persistent ids.

    Typed storages carry their dtype; untyped ones (``_rebuild_tensor_v3``) get the dtype
    passed to the rebuild call. bfloat16 is byte-swapped as 16-bit words.
    """
    typed, v3 = {}, {}

    def np_dtype(torch_dtype):
        if torch_dtype == torch.bfloat16:
            return np.dtype(np.uint16)
        return torch.empty(0, dtype=torch_dtype).numpy().dtype

    class Scan(pickle.Unpickler):
        def persistent_load(self, pid):
            _, stype, key, _, _ = pid
            typed[key] = stype
            return key

        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v3"):
                return lambda key, off, size, stride, rg, hooks, dtype, *rest: \
                    v3.__setitem__(key, dtype)
            if module == "torch._utils":
                return lambda *a, **k: None
            return super().find_class(module, name)

    Scan(io.BytesIO(data_pkl)).load()
    out = {k: (np.dtype(np.uint8) if st is torch.UntypedStorage else np_dtype(st.dtype))
           for k, st in typed.items()}
    out.update({k: np_dtype(dt) for k, dt in v3.items()})
    return out


def to_big_endian(src: Path, dst: Path) -> None:
    """Rewrite a zip checkpoint as a big-endian machine would have written it."""
    with zipfile.ZipFile(src) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl"))
        prefix = pkl[:-len("data.pkl")]
        dtypes = storage_dtypes(z.read(pkl))
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as w:
            for n in names:
                data = z.read(n)
                if n == prefix + "byteorder":
                    data = b"big"
                elif n.startswith(prefix + "data/"):
                    dt = dtypes[n[len(prefix + "data/"):]]
                    data = np.frombuffer(data, dt).byteswap().tobytes()
                w.writestr(n, data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT))
    out = Path(ap.parse_args(argv).out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REF))
    import torch_smlpnet as R

    model, opt, sched = trained_model(R)
    sd, arrays = official_state_dict(R, model)
    np.savez(out / "expected.npz", **arrays)
    # eval-mode logits of the saved weights, to show the keys load into the right places
    from spikingjelly.activation_based import functional
    model.eval()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(images.unsqueeze(0).repeat(4, 1, 1, 1, 1))
    functional.reset_net(model)
    np.savez(out / "expected_logits.npz", images=images.numpy(), T=np.int64(4),
             logits=logits.numpy())
    (out / "config.json").write_text(json.dumps(CONFIG, indent=1) + "\n")

    # (a) bare state dict, zip and legacy formats
    torch.save(sd, out / "bare_state_dict.pth")
    torch.save(sd, out / "bare_state_dict_legacy.pth", _use_new_zipfile_serialization=False)

    # (b) the official train.py checkpoint layout
    args = argparse.Namespace(
        model="mixers_sparse_patchcell_origin", dataset="cifar10", T=4, batch_size=128,
        epochs=300, lr=0.1, momentum=0.9, weight_decay=1e-4, lr_scheduler="cosa",
        data_path="/data/cifar10", output_dir="./logs", tet=True, amp=True,
        resume="", start_epoch=0, seed=2023, world_size=1, dist_url="env://",
        distributed=False, device="cuda", img_size=(16, 16), milestones=[100, 200])
    try:
        scaler = torch.amp.GradScaler("cpu").state_dict()
    except Exception:  # pragma: no cover - older torch
        scaler = {}
    ckpt = {"model": sd, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
            "epoch": 1, "args": args, "max_test_acc1": 12.5, "scaler": scaler}
    torch.save(ckpt, out / "train_checkpoint.pth")

    # (c) malicious: a real state dict first, then the payload
    few = collections.OrderedDict((k, sd[k]) for k in ("mlp_head.1.weight", "mlp_head.1.bias"))
    torch.save({"model": few, "epoch": 1, "payload": Evil()}, out / "malicious.pth")

    # (d) dtypes and strides
    t, expected = dtype_tensors()
    np.savez(out / "expected_dtypes.npz", **expected)
    torch.save(t, out / "dtypes_strides.pth")
    # torch cannot read back untyped (uint16) storages from the legacy format: leave it out
    legacy = collections.OrderedDict((k, v) for k, v in t.items() if k != "uint16")
    torch.save(legacy, out / "dtypes_strides_legacy.pth", _use_new_zipfile_serialization=False)
    to_big_endian(out / "dtypes_strides.pth", out / "dtypes_strides_bigendian.pth")

    # refused kinds of file
    torch.save(R.build(**CONFIG), out / "whole_model.pth")
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(out / "torchscript.pt"))

    # self-checks with torch itself: every file loads to the expected arrays
    for name in ("bare_state_dict.pth", "bare_state_dict_legacy.pth"):
        got = torch.load(out / name, weights_only=True)
        assert all(np.array_equal(got[k].numpy(), arrays[k]) for k in arrays), name
    got = torch.load(out / "train_checkpoint.pth", weights_only=False)["model"]
    assert all(np.array_equal(got[k].numpy(), arrays[k]) for k in arrays)
    for name in ("dtypes_strides.pth", "dtypes_strides_legacy.pth",
                 "dtypes_strides_bigendian.pth"):
        got = torch.load(out / name, weights_only=True)
        for k, v in expected.items():
            if k not in got and name.endswith("_legacy.pth"):
                continue
            if k == "uint16" and name.endswith("_bigendian.pth"):
                # torch byte-swaps a big-endian file per storage dtype, and an untyped
                # (v3) storage counts as bytes, so torch leaves these uint16 unswapped;
                # the file holds them as a big-endian writer would, npsnn swaps them.
                continue
            g = got[k].detach()
            g = g.float() if g.dtype == torch.bfloat16 else g
            assert g.dtype == torch.uint16 or np.array_equal(g.contiguous().numpy(), v), (name, k)
            if g.dtype == torch.uint16:
                assert np.array_equal(g.to(torch.int32).numpy(), v.astype(np.int32)), (name, k)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(list(out.iterdir()))} files, {total / 1024:.1f} KB, to {out}")


if __name__ == "__main__":
    main()
