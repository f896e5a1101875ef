"""Training throughput of factlab's from-scratch models: tokens/s and model FLOPs utilisation.

    python benchmarks/bench_train.py                        # tiny and small, current device
    python benchmarks/bench_train.py --sizes tiny small medium large --steps 30 --compile

Each size trains a character-level GPT-2 (vocab 57, untied head, as in the compression paper) with
`factlab.train.train_lm` on a random token stream for a few steps. Throughput is the median over the
logged intervals after the first (which includes allocation and, with --compile, compilation).
Model FLOPs per token are 6·N (forward + backward, N = parameters, attention ignored), so
MFU = 6·N·tokens/s / peak. The peak is known for a few GPUs (dense bf16 tensor-core numbers); on other
devices only the achieved FLOP/s is printed.
"""
import argparse, platform, sys, time

import torch

from factlab.core import get_device
from factlab.models import scratch_model, n_params
from factlab.train import TrainConfig, random_windows, train_lm

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}

def peak_flops(device) -> tuple[float|None, str]:
    "Peak dense bf16 FLOP/s of the device when known, and the device's name."
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in PEAK_BF16.items() if k in name), None), name
    return None, f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"

def bench(size, steps, batch_size, seq_len, device, compile_):
    vocab = 57
    model = scratch_model(vocab, size, n_ctx=seq_len)
    stream = torch.randint(4, vocab, (200_000,))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, device=str(device), compile=compile_,
                      progress=False, log_every=max(1, steps // 5))
    t0 = time.perf_counter()
    out = train_lm(model, random_windows(stream, cfg), cfg)
    return n_params(model), out["tokens_per_s"], time.perf_counter() - t0

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    ap.add_argument("--steps", type=int, default=None, help="steps per size (default 10 on CPU, 50 on GPU)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    a = ap.parse_args(argv)
    device = get_device(a.device)
    steps = a.steps or (50 if device.type == "cuda" else 10)
    peak, name = peak_flops(device)
    print(f"device: {name}; batch {a.batch_size} x {a.seq_len} tokens; {steps} steps per size; "
          f"{'bf16 autocast' if device.type == 'cuda' else 'fp32'}{', compiled' if a.compile and device.type == 'cuda' else ''}")
    print(f"{'size':<8}{'params':>10}{'tokens/s':>12}{'TFLOP/s':>10}{'MFU':>8}{'wall s':>8}")
    for size in a.sizes:
        n, tps, wall = bench(size, steps, a.batch_size, a.seq_len, device, a.compile)
        flops = 6 * n * tps
        mfu = f"{flops / peak:.1%}" if peak else "n/a"
        print(f"{size:<8}{n / 1e6:>9.1f}M{tps:>12,.0f}{flops / 1e12:>10.3f}{mfu:>8}{wall:>8.1f}", flush=True)

if __name__ == "__main__":
    sys.exit(main())
