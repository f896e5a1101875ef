"""Scoring speed with SmolLM2-135M-Instruct (offline): factlab's batched `completion_logprobs` vs a plain
per-example Hugging Face loop (one forward per statement), and one long prompt with two completions scored
with the prompt run once vs run with each completion. Prints a JSON record with the machine, the timings and the ratios.

`completion_logprobs` is timed twice: plain batching (`share_prefix=False`, every statement its own branch of
the packed row, all its tokens run) and the default, where each distinct prefix runs once. The cities
statements all begin with BOS "The city of", so the default does less work; how much less depends on the dataset.

It also places the plain batched mode and the loop under the machine's roof: forward FLOPs (2·N per token)
per second, against the fp32 FLOP/s of a large matmul measured on the spot. On a CPU plain batching runs close
to that roof, so without doing less work the speed-up over the loop cannot exceed roof / loop rate
(`speedup_bound`).

    FACTLAB_DATA=../shared/data .venv/bin/python benchmarks/bench_scoring.py [--n 1000] [--batch-size 64] [--reps 3]

The loop and the two batched modes are timed in `--reps` interleaved repetitions after a warm-up pass each;
times are medians and each speed-up is the median over repetitions of loop time / batched time.
"""
import argparse, json, platform, time
from pathlib import Path

import numpy as np
import torch

from factlab.core import provenance
from factlab.data import statements
from factlab.models import load_model, n_params
from factlab.scoring import completion_logprobs, reduce_logprobs
from bench_train import cpu_matmul_flops, cpu_model


@torch.no_grad()
def hf_loop(model, tok, texts):
    "The plain loop: tokenize one statement, one forward, sum the log-probs of its tokens after BOS."
    out = []
    for t in texts:
        ids = torch.tensor([[tok.bos_token_id] + tok(t).input_ids])
        lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        out.append(lp.gather(-1, ids[0, 1:, None]).sum().item())
    return np.array(out)


def timed(f, repeat=1):
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter(); res = f(); best = min(best, time.perf_counter() - t0)
    return best, res


def interleaved(fns:dict, reps:int) -> dict:
    "Seconds of each function in each of `reps` repetitions, run in turn (order rotating), so that load changes hit all alike."
    times, names = {k: [] for k in fns}, list(fns)
    for r in range(reps):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter(); fns[k](); times[k].append(time.perf_counter() - t0)
    return {k: np.array(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="statements to score (from factlab.data cities)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--prefix-statements", type=int, default=40, help="cities statements joined into the long prefix")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--reps", type=int, default=3, help="interleaved timed repetitions of the loop and both batched modes (after a warm-up)")
    ap.add_argument("--out", default=str(Path(__file__).parent/"results"/"bench_scoring.json"))
    a = ap.parse_args()

    model, tok = load_model(a.model, device="cpu")
    texts, _ = statements("cities", n=a.n, seed=0)
    n_tokens = sum(len(tok(t).input_ids) + 1 for t in texts)

    # 1. batched vs per-example, on the same statements (each scored after BOS alone), repetitions interleaved
    def batched(share_prefix):
        lps = completion_logprobs(model, tok, [""] * len(texts), texts, batch_size=a.batch_size, add_bos=True, share_prefix=share_prefix)
        return reduce_logprobs(lps, "sum")
    fns = {"loop": lambda: hf_loop(model, tok, texts), "plain": lambda: batched(False), "shared": lambda: batched(True)}
    loop, plain, shared = (f() for f in fns.values())      # a warm-up pass each, which also gives the numbers
    times = interleaved(fns, a.reps)
    t_loop, t_batch, t_share = (float(np.median(times[k])) for k in fns)
    ratio = lambda k: round(float(np.median(times["loop"] / times[k])), 2)   # per repetition, then the median
    max_diff = max(float(np.abs(plain - loop).max()), float(np.abs(shared - loop).max()))

    # 2. one long prefix, two completions: one shared tree vs two full forwards (batched) vs two one-by-one
    prefix_texts, _ = statements("cities", n=a.prefix_statements, seed=1)
    prefix, comps = " ".join(prefix_texts), [" " + texts[0], " " + texts[1]]
    prefix_tokens = len(tok(prefix).input_ids) + 1
    t_shared, sh = timed(lambda: completion_logprobs(model, tok, [prefix] * 2, comps, add_bos=True), repeat=5)
    t_sep, sep = timed(lambda: completion_logprobs(model, tok, [prefix] * 2, comps, add_bos=True, share_prefix=False), repeat=5)
    t_sep1, _ = timed(lambda: [completion_logprobs(model, tok, [prefix], [c], add_bos=True) for c in comps], repeat=5)
    shared_diff = max(float(np.abs(x - y).max()) for x, y in zip(sh, sep))

    flops = 2 * n_params(model) * n_tokens       # forward; the tied embedding counted once, as the output head
    peak = cpu_matmul_flops() if next(model.parameters()).device.type == "cpu" else None
    prov = provenance()
    rec = dict(
        git_sha=prov["git_sha"], git_dirty=prov["git_dirty"],
        machine=dict(device=prov["device"], cpu=cpu_model() or prov["device_name"] or platform.machine(), cpu_count=prov["cpu_count"],
                     torch_threads=torch.get_num_threads(), torch=prov["packages"]["torch"], transformers=prov["packages"]["transformers"]),
        model=a.model, n_statements=len(texts), n_tokens=n_tokens, batch_size=a.batch_size,
        reps=a.reps, hf_loop_s=round(t_loop, 2), batched_s=round(t_batch, 2), batched_speedup=ratio("plain"),
        batched_statements_per_s=round(len(texts) / t_batch, 1),
        batched_shared_prefix_s=round(t_share, 2), batched_shared_prefix_speedup=ratio("shared"),
        batched_shared_prefix_statements_per_s=round(len(texts) / t_share, 1), max_abs_diff_sum_logprob=max_diff,
        loop_gflop_s=round(flops / t_loop / 1e9, 1), batched_gflop_s=round(flops / t_batch / 1e9, 1),
        matmul_peak_gflop_s=peak and round(peak / 1e9, 1), speedup_bound=peak and round(peak / (flops / t_loop), 2),
        prefix_tokens=prefix_tokens, shared_prefix_s=round(t_shared, 3), separate_batched_s=round(t_sep, 3),
        separate_one_by_one_s=round(t_sep1, 3), shared_prefix_speedup_vs_batched=round(t_sep / t_shared, 2),
        shared_prefix_speedup_vs_one_by_one=round(t_sep1 / t_shared, 2), shared_vs_separate_max_abs_diff=shared_diff)
    print(json.dumps(rec, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    main()
