"""GPU check before a long run: factlab's fast training paths, which it takes on CUDA only (bf16 autocast, fused
AdamW, TF32, torch.compile), train like the plain fp32 loop. Two tiny models are trained a few steps by
`factlab.train.fit` on the GPU with compilation, together (stacked, vmapped) and each alone, and each alone in fp32
on the CPU; exits 1 when a loss is not finite or a GPU loss is further than `--tol` from its fp32 one.

Without CUDA there is nothing to check (the CPU loop's own checks, grouped vs alone included, are tests in
nbs/03_train.ipynb) and the script exits 0; `--device cpu` runs its code anyway.

    python3 scripts/check_fast_paths.py [--device cuda] [--steps 5] [--tol 0.05]
"""
import argparse, sys, time
from dataclasses import replace

import numpy as np
import torch

from factlab.core import get_device
from factlab.models import scratch_model
from factlab.train import TrainConfig, fit, random_windows


def losses(out) -> np.ndarray:
    "[models, logged steps] losses of one `fit` result (one model or K)."
    return np.array([[e["loss"] for e in h] for h in out.get("histories") or [out["history"]]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="default: factlab.core.get_device()")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--tol", type=float, default=5e-2, help="max |loss - fp32 loss| (bf16 autocast rounds differently)")
    a = ap.parse_args(argv)
    device = get_device(a.device)
    if device.type != "cuda" and a.device is None:
        print(f"device {device}: no fast paths to check (fp32, not compiled); the CPU checks are tests in nbs/03_train.ipynb")
        return 0
    vocab, seeds = 64, [0, 1]
    cfg = TrainConfig(steps=a.steps, batch_size=8, seq_len=64, device=str(device), compile=True, progress=False)
    stream = torch.randint(4, vocab, (20_000,), generator=torch.Generator().manual_seed(0))   # no special tokens (pad = 0)
    batches = random_windows(stream, cfg)
    t0 = time.perf_counter()
    grouped = losses(fit([scratch_model(vocab, "tiny", seed=s) for s in seeds], batches, cfg, seeds=seeds))
    t1 = time.perf_counter()
    alone = np.concatenate([losses(fit(scratch_model(vocab, "tiny", seed=s), batches, replace(cfg, seed=s))) for s in seeds])
    t2 = time.perf_counter()
    fp32 = np.concatenate([losses(fit(scratch_model(vocab, "tiny", seed=s), batches, replace(cfg, seed=s, device="cpu", compile=False)))
                           for s in seeds])
    d_group, d_alone = float(np.abs(grouped - fp32).max()), float(np.abs(alone - fp32).max())
    print(f"device {device} ({'bf16 autocast, fused AdamW, compiled' if device.type == 'cuda' else 'fp32, not compiled'}); "
          f"grouped {t1 - t0:.1f} s, alone {t2 - t1:.1f} s (compilation included); losses {grouped[:, 0].round(3)} -> {grouped[:, -1].round(3)}; "
          f"max |loss - fp32 CPU loss|: grouped {d_group:.1e}, alone {d_alone:.1e} (tolerance {a.tol:g})")
    finite = all(np.isfinite(x).all() for x in (grouped, alone, fp32))
    return 0 if finite and max(d_group, d_alone) <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
