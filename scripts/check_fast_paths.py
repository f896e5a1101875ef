"""Check that train's fast paths compose on this device before a long run: bf16 autocast over the vmapped
group loss (`train_lm_group`), fused AdamW on the stacked parameters, torch.compile of the vmapped loss (eager
and sdpa attention) and of a single model. factlab turns these on only on CUDA; on a CPU this script runs them
anyway (CPU autocast, inductor's C++ backend), so that a failure shows before any GPU time is spent.

    .venv/bin/python scripts/check_fast_paths.py [--device cuda]
"""
import argparse, copy, time

import torch
from torch.func import stack_module_state, functional_call, vmap

from factlab.models import scratch_model
from factlab.train import TrainConfig, lm_loss, random_windows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(ap.parse_args().device)
    vocab, cfg = 64, TrainConfig(batch_size=4, seq_len=64)
    models = [scratch_model(vocab, "tiny", seed=k).to(dev) for k in range(2)]
    windows, gen = random_windows(torch.randint(0, vocab, (5000,), generator=torch.Generator().manual_seed(0)), cfg), torch.Generator().manual_seed(0)
    batch = tuple(torch.stack(t).to(dev) for t in zip(*[windows(k, gen) for k in range(len(models))]))
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]); base.config.pad_token_id = None
    def one_loss(p, b, batch): return lm_loss(lambda *a, **kw: functional_call(base, (p, b), args=a, kwargs=kw), batch)

    base.config._attn_implementation = "eager"
    with torch.no_grad(): fp32 = vmap(one_loss, randomness="different")(params, buffers, batch)
    with torch.autocast(dev.type, dtype=torch.bfloat16): bf16 = vmap(one_loss, randomness="different")(params, buffers, batch)
    bf16.sum().backward()
    finite = all(bool(p.grad.isfinite().all()) for p in params.values())
    print(f"bf16 autocast over vmap: max |loss - fp32 loss| {float((bf16 - fp32).abs().max()):.1e}, gradients finite: {finite}")
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3, fused=True)
    opt.step(); opt.zero_grad(set_to_none=True)
    print("fused AdamW step on the stacked parameters: ok")
    for attn in ("eager", "sdpa"):
        base.config._attn_implementation = attn
        t0 = time.perf_counter()
        compiled = torch.compile(vmap(one_loss, randomness="different"))(params, buffers, batch)
        compiled.sum().backward(); opt.zero_grad(set_to_none=True)
        with torch.no_grad(): ref = vmap(one_loss, randomness="different")(params, buffers, batch)
        print(f"torch.compile(vmap(loss)), {attn} attention: {time.perf_counter() - t0:.0f} s to compile and run, "
              f"max |diff| vs uncompiled {float((compiled.detach() - ref).abs().max()):.1e}")
    single = torch.compile(scratch_model(vocab, "tiny", seed=3).to(dev))
    with torch.autocast(dev.type, dtype=torch.bfloat16): loss = lm_loss(single, tuple(t[0] for t in batch))
    loss.backward()
    print(f"torch.compile(model) under bf16 autocast: loss {float(loss):.3f}, ok")


if __name__ == "__main__":
    main()
