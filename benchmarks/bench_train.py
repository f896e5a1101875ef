"""Training throughput of factlab's from-scratch models: tokens/s and model FLOPs utilisation.

    python benchmarks/bench_train.py                        # tiny and small, current device
    python benchmarks/bench_train.py --sizes tiny small medium large --steps 30 --compile
    python benchmarks/bench_train.py --sizes tiny small medium large --steps 4 --batch-size 8   # a CPU
    python benchmarks/bench_train.py --sizes tiny --cpu-fast     # CPU: bf16 autocast, fused AdamW, compiled

Each size trains a character-level GPT-2 (vocab 57, untied head, as in the compression paper) with
`factlab.train.fit` on a random token stream for a few steps. Throughput is the median over the
logged intervals after the first (which includes allocation and, with --compile, compilation).
Model FLOPs per token are 6·N + 12·L·d·T (forward + backward of the weights, N = parameters, plus
attention over T = seq-len positions, as in PaLM's MFU), so MFU = FLOPs per token · tokens/s / peak.
On a GPU the peak is the spec sheet's dense bf16 tensor-core number (known for a few GPUs); on a CPU,
which has no such published figure for its configuration, it is the fp32 FLOP/s of a large square
matmul measured on the spot with the same threads, the most this machine's BLAS reaches.

    python benchmarks/bench_train.py --group 4 --sizes tiny   # 4 seeds: one run, 4 sequential runs, 4 grouped

`--group K` times, for each size, one seed trained alone, K seeds trained one after the other with
`fit`, and the same K seeds trained together by `fit` given the list of K models (stacked parameters, one
vmapped forward/backward). Each mode runs a 2-step warm-up first (allocation, compilation) and is then timed
for `--steps` steps. The issue's GPU target is grouped <= 1.5x one seed; on a CPU, where one small
model already keeps the cores busy, no speed-up over sequential runs is expected.
"""
import argparse, platform, sys, time

import torch

from factlab.core import get_device
from factlab.models import scratch_model, n_params
from factlab.train import TrainConfig, fit, random_windows

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}

def cpu_model() -> str|None:
    "The CPU's model name (from /proc/cpuinfo), or None where there is none to read."
    try: return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): return None


def cpu_matmul_flops(n=2048, repeat=5) -> float:
    "fp32 FLOP/s of an n×n matmul on the CPU (best of `repeat`): the roof a CPU's MFU is measured against."
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best

def peak_flops(device) -> tuple[float|None, str]:
    "Peak FLOP/s of the device (GPU: dense bf16 spec when known; CPU: measured fp32 matmul) and its description."
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in PEAK_BF16.items() if k in name), None), f"{name} (spec dense bf16 peak)"
    peak = cpu_matmul_flops()
    return peak, f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (measured fp32 matmul peak {peak / 1e9:.0f} GFLOP/s)"

def flops_per_token(model, seq_len) -> float:
    "Training FLOPs per token: 6·N for the weights + 12·L·d·T for attention (PaLM, appendix B)."
    c = model.config
    return 6 * n_params(model) + 12 * c.num_hidden_layers * c.hidden_size * seq_len

CPU_FAST = dict(cpu_bf16=True, cpu_fused_adamw=True, cpu_compile=True)   # TrainConfig's opt-in CPU switches

def bench(size, steps, batch_size, seq_len, device, compile_, cpu_fast=False):
    vocab = 57
    model = scratch_model(vocab, size, n_ctx=seq_len)
    stream = torch.randint(4, vocab, (200_000,))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, device=str(device), compile=compile_,
                      progress=False, log_every=max(1, steps // 5), **(CPU_FAST if cpu_fast else {}))
    t0 = time.perf_counter()
    out = fit(model, random_windows(stream, cfg), cfg)
    return n_params(model), flops_per_token(model, seq_len), out["tokens_per_s"], time.perf_counter() - t0

def bench_group(size, K, steps, batch_size, seq_len, device, compile_):
    "Parameters per model, and wall seconds of `steps` steps for: one seed alone, K seeds sequentially, K seeds grouped."
    vocab = 57
    stream = torch.randint(4, vocab, (200_000,))
    def cfg(n): return TrainConfig(steps=n, batch_size=batch_size, seq_len=seq_len, device=str(device), compile=compile_,
                                   progress=False, log_every=max(1, n // 5))
    def model(seed): return scratch_model(vocab, size, n_ctx=seq_len, seed=seed)
    def alone(seeds, n):
        for s in seeds: c = cfg(n); fit(model(s), random_windows(stream, c), c)
    def grouped(n): c = cfg(n); fit([model(s) for s in range(K)], random_windows(stream, c), c)
    walls = {}
    for name, fn in [("one", lambda n: alone([0], n)), ("sequential", lambda n: alone(range(K), n)), ("grouped", grouped)]:
        fn(2)                                            # warm-up: allocation, kernels, compilation
        if device.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter(); fn(steps)              # fit reads the loss back at the end: synchronised
        walls[name] = time.perf_counter() - t0
    return n_params(model(0)), walls

def precision(a, device) -> str:
    cuda = device.type == "cuda"
    if not cuda and a.cpu_fast: return "bf16 autocast, fused AdamW, compiled (cpu_bf16, cpu_fused_adamw, cpu_compile)"
    return ("bf16 autocast" if cuda else "fp32") + (", compiled" if a.compile and cuda else "")

def main_group(a, device, steps):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {a.batch_size} x {a.seq_len} tokens per model; {steps} timed steps; K = {a.group}; {precision(a, device)}")
    print(f"{'size':<8}{'params':>9}{'one s':>8}{'seq s':>8}{'group s':>9}{'group/seq':>11}{'group/one':>11}{'group tok/s':>13}")
    for size in a.sizes:
        n, w = bench_group(size, a.group, steps, a.batch_size, a.seq_len, device, a.compile)
        t1, ts, tg = w["one"], w["sequential"], w["grouped"]
        tpg = a.group * a.batch_size * a.seq_len * steps / tg
        print(f"{str(size):<8}{n / 1e6:>8.2f}M{t1:>8.2f}{ts:>8.2f}{tg:>9.2f}{tg / ts:>11.2f}{tg / t1:>11.2f}{tpg:>13,.0f}", flush=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    ap.add_argument("--steps", type=int, default=None, help="steps per size (default 10 on CPU, 50 on GPU)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    ap.add_argument("--group", type=int, default=0, help="K > 0: compare K seeds grouped (fit on a list of K models) with K sequential runs")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--cpu-fast", action="store_true", help="on the CPU: TrainConfig(cpu_bf16=True, cpu_fused_adamw=True, cpu_compile=True)")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    a.sizes = [tuple(map(int, s.split(","))) if "," in s else s for s in a.sizes]   # "2,64,2" -> (layers, d, heads)
    device = get_device(a.device)
    steps = a.steps or (50 if device.type == "cuda" else 10)
    if a.group: return main_group(a, device, steps)
    peak, name = peak_flops(device)
    print(f"device: {name}; batch {a.batch_size} x {a.seq_len} tokens; {steps} steps per size; {precision(a, device)}")
    print(f"{'size':<8}{'params':>10}{'tokens/s':>12}{'TFLOP/s':>10}{'MFU':>8}{'wall s':>8}")
    for size in a.sizes:
        n, fpt, tps, wall = bench(size, steps, a.batch_size, a.seq_len, device, a.compile, a.cpu_fast)
        flops = fpt * tps
        mfu = f"{flops / peak:.1%}" if peak else "n/a"
        print(f"{str(size):<8}{n / 1e6:>9.1f}M{tps:>12,.0f}{flops / 1e12:>10.3f}{mfu:>8}{wall:>8.1f}", flush=True)

if __name__ == "__main__":
    sys.exit(main())
