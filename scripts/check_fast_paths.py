"""Check, before a long run, that factlab's training paths work on this device: two tiny models trained a few
steps with `train_lm_group` (vmapped) and each alone with `train_lm`, `compile` on, their losses compared. On CUDA
these are the paths the gpu profiles take (bf16 autocast, fused AdamW, torch.compile); factlab keeps those to CUDA,
so on a CPU the same calls run in fp32 without compilation. Exits 1 when the losses disagree or are not finite.

    python3 scripts/check_fast_paths.py [--device cuda] [--steps 5]
"""
import argparse, sys, time
from dataclasses import replace

import numpy as np
import torch

from factlab.core import get_device
from factlab.models import scratch_model
from factlab.train import TrainConfig, random_windows, train_lm, train_lm_group


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="default: factlab.core.get_device()")
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    device, vocab, seeds = get_device(a.device), 64, [0, 1]
    cfg = TrainConfig(steps=a.steps, batch_size=8, seq_len=64, device=str(device), compile=True, progress=False)
    stream = torch.randint(0, vocab, (20_000,), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    group = train_lm_group([scratch_model(vocab, "tiny", seed=s) for s in seeds], random_windows(stream, cfg), cfg, seeds=seeds)
    t1 = time.perf_counter()
    alone = [train_lm(scratch_model(vocab, "tiny", seed=s), random_windows(stream, cfg), replace(cfg, seed=s))
             for s in seeds]
    t2 = time.perf_counter()
    g = np.array([[h["loss"] for h in hist] for hist in group["histories"]])
    s = np.array([[h["loss"] for h in out["history"]] for out in alone])
    tol = 5e-2 if device.type == "cuda" else 1e-4     # bf16 autocast on CUDA: the two paths round differently
    diff = float(np.abs(g - s).max())
    print(f"device {device} ({'bf16 autocast, fused AdamW, compiled' if device.type == 'cuda' else 'fp32, not compiled'}); "
          f"grouped {t1 - t0:.1f} s, alone {t2 - t1:.1f} s (compilation included); losses {g[:, 0].round(3)} -> {g[:, -1].round(3)}; "
          f"max |grouped - alone| {diff:.1e} (tolerance {tol:g})")
    sys.exit(0 if np.isfinite(g).all() and np.isfinite(s).all() and diff <= tol else 1)


if __name__ == "__main__":
    main()
