"""Scoring against lm-evaluation-harness: the same (context, continuation) requests, the same model folder,
through lm-eval's Hugging Face model (`HFLM.loglikelihood`) and `factlab.scoring.completion_logprobs`.

    make bench-deps                      # lm-eval (bench-only extra; never part of `make install`)
    FACTLAB_DATA=../shared/data .venv/bin/python benchmarks/bench_lmeval.py [--reps 5] [--threads 2] [--profile]
    make bench-lmeval                    # the same, defaults

Model: SmolLM2-135M-Instruct, the converted fp32 safetensors folder `factlab.models.load_model` resolves the
offline package to; lm-eval loads that folder itself (`HFLM(pretrained=<folder>, dtype="float32", device="cpu")`).
Both put BOS (`<|im_start|>`, which SmolLM2's tokenizer does not add by itself) first: factlab with
`add_bos=True`, lm-eval with `add_bos_token=True` (its tokenizer then adds it).

Requests
- (a) cities: each truth-probe statement "The city of X is in Y." split before its country: context
  "The city of X is in", continuation " Y." (the part that makes it true or false).
- (b) FIB (XSum): the prompt factlab's FIB pipeline builds (template 0, the article truncated to 512 tokens)
  as context, each of the item's two summaries as continuation.

Tokenization: factlab tokenizes context and continuation apart and concatenates; lm-eval tokenizes
context + continuation whole and splits at the context's length, after moving the context's trailing spaces
into the continuation. The benchmark checks, request by request, that both feed the model the same token ids;
where they differ (a merge across the boundary) the numbers may differ and are reported apart.

Timing: each repetition runs both, order alternating, end to end from strings (tokenization included);
the table gives the medians and, for factlab, the median over repetitions of (lm-eval's time at its faster
batch size in that repetition) / (factlab's time). factlab is timed as one call on all
requests; for FIB also as `score_fib` calls it (one call per item, its two summaries sharing the article).
`--profile` adds a cProfile of one pass of each (the top functions by own time).

Work: factlab runs each distinct prefix of a chunk of requests once (a token tree) and the output head only
where a completion token is scored; lm-eval runs every token of every request through the body and the head.
`work ratio` is lm-eval's forward multiply-adds over factlab's (lm-eval's padding not counted): the speed-up
factlab would show at equal FLOP/s. The benchmark asserts that both give the same log-probs to 1e-4 where
they feed the model the same token ids.
"""
import argparse, cProfile, io, json, os, pstats, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch

from factlab.core import provenance
from factlab.data import statements
from factlab.recipes.fib import fib_items, fib_prompts
from factlab.models import load_model
from factlab.scoring import _chunks, _token_tree, completion_logprobs, reduce_logprobs
from bench_train import cpu_model

RESULTS = Path(__file__).parent/"results"


def cities_requests(n:int) -> list[tuple[str, str]]:
    "(context, continuation) per cities statement: everything before the country, and ' <country>.'"
    texts, _ = statements("cities", n=n, seed=0)
    return [(t[:t.rindex(" is in ") + 6], t[t.rindex(" is in ") + 6:]) for t in texts]


def fib_requests(tok, n_per_file:int) -> list[tuple[str, str]]:
    "(prompt, summary): each FIB XSum item's prompt (template 0, 512-token cap) with its consistent, then its inconsistent summary."
    items = fib_items("xsum", n_per_file=n_per_file, seed=0)
    prompts, _ = fib_prompts(tok, items, 0, 512, None)
    return [(p, y) for p, c, i in zip(prompts, items["consistent"], items["inconsistent"]) for y in (c, i)]


def factlab_tokens(tok, context:str, continuation:str) -> tuple[list[int], list[int]]:
    "The ids `completion_logprobs(add_bos=True)` runs: BOS + context, then the continuation tokenized apart."
    return [tok.bos_token_id] + (tok(context).input_ids if context else []), tok(continuation, add_special_tokens=False).input_ids


def lmeval_tokens(lm, context:str, continuation:str) -> tuple[list[int], list[int]]:
    "The ids `HFLM.loglikelihood` runs (its empty-context and `_encode_pair` paths)."
    if context == "": return [lm.prefix_token_id], lm.tok_encode(continuation, add_special_tokens=False)
    return lm._encode_pair(context, continuation)


def work_ratio(model, tok, reqs, batch_size) -> dict:
    "Forward multiply-adds of lm-eval (every token through the body and the output head, padding not counted) over factlab's (each node of the token tree through the body, each scored position through the head)."
    ctx, seqs = zip(*((c, c + y) for c, y in (factlab_tokens(tok, c, y) for c, y in reqs)))
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    nodes = sum(len(_token_tree([seqs[i] for i in idx])[0]) for idx in _chunks(ctx, seqs, order, batch_size, 512))
    head = model.get_output_embeddings().weight.numel(); body = sum(p.numel() for p in model.parameters()) - head
    tokens, scored = sum(map(len, seqs)), sum(len(s) - len(c) for c, s in zip(ctx, seqs))
    return dict(tree_nodes=nodes, scored_positions=scored, ratio=round(tokens * (body + head) / (nodes * body + scored * head), 2))


def run_factlab(model, tok, reqs, batch_size, per_item=False):
    if per_item:   # as factlab.recipes.fib.score_fib: one call per prompt, its summaries sharing the prompt's forward
        return np.concatenate([reduce_logprobs(completion_logprobs(model, tok, [p, p], [reqs[j][1], reqs[j + 1][1]], batch_size=2, add_bos=True), "sum")
                               for j, p in ((j, reqs[j][0]) for j in range(0, len(reqs), 2))])
    return reduce_logprobs(completion_logprobs(model, tok, [c for c, _ in reqs], [y for _, y in reqs], batch_size=batch_size, add_bos=True), "sum")


def run_lmeval(lm, reqs, batch_size):
    from lm_eval.api.instance import Instance
    lm.batch_size_per_gpu = batch_size
    inst = [Instance("loglikelihood", {}, (c, y), i) for i, (c, y) in enumerate(reqs)]
    return np.array([lp for lp, _ in lm.loglikelihood(inst, disable_tqdm=True)])


def interleaved(fns:dict, reps:int) -> dict:
    "Median seconds of each function over `reps` repetitions, run in turn (order rotating), after one warm-up each."
    for f in fns.values(): f()
    times, names = {k: [] for k in fns}, list(fns)
    for r in range(reps):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter(); fns[k](); times[k].append(time.perf_counter() - t0)
    return times


def profile(f, top=12) -> str:
    pr = cProfile.Profile(); pr.enable(); f(); pr.disable()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    return "\n".join(l for l in s.getvalue().splitlines() if l.strip() and not l.startswith(("   Ordered", "         ")))[:4000]


def compare(name, reqs, tok, lm, model, args, per_item=False):
    "Token check, max |Δ log-prob|, interleaved timing of one workload."
    same = [factlab_tokens(tok, c, y) == tuple(map(list, lmeval_tokens(lm, c, y))) for c, y in reqs]
    fl, le = run_factlab(model, tok, reqs, args.batch_size), run_lmeval(lm, reqs, args.batch_size)
    d = np.abs(fl - le)
    assert d[np.array(same)].max() < 1e-4, f"{name}: factlab and lm-eval differ by {d.max():.1e} on the same token ids"
    fns = {f"lm_eval_bs{args.batch_size}": lambda: run_lmeval(lm, reqs, args.batch_size)}
    if per_item: fns["lm_eval_bs2"] = lambda: run_lmeval(lm, reqs, 2)
    fns[f"factlab_bs{args.batch_size}"] = lambda: run_factlab(model, tok, reqs, args.batch_size)
    if per_item: fns["factlab_per_item"] = lambda: run_factlab(model, tok, reqs, args.batch_size, per_item=True)
    times = {k: np.array(v) for k, v in interleaved(fns, args.reps).items()}
    lm_best = np.min([v for k, v in times.items() if k.startswith("lm_eval")], axis=0)   # per repetition: lm-eval at its faster batch size
    n_tok = sum(len(a) + len(b) for a, b in (factlab_tokens(tok, c, y) for c, y in reqs))
    rec = dict(workload=name, n_requests=len(reqs), n_tokens=n_tok, same_token_ids=int(sum(same)),
               max_abs_diff=float(d.max()), max_abs_diff_same_tokens=float(d[np.array(same)].max()) if any(same) else None,
               max_rel_diff=float((d / np.maximum(np.abs(le), 1e-9)).max()),
               seconds={k: [round(float(t), 3) for t in v] for k, v in times.items()},
               median_s={k: round(float(np.median(v)), 3) for k, v in times.items()},
               work_ratio=work_ratio(model, tok, reqs, args.batch_size))
    rec["speedup_vs_best_lm_eval"] = {k: round(float(np.median(lm_best / v)), 2) for k, v in times.items() if k.startswith("factlab")}
    if args.profile:
        rec["profile"] = {k: profile(f) for k, f in fns.items()}
    print(f"{name}: medians {rec['median_s']} s", flush=True)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-cities", type=int, default=500, help="cities statements (of 1,496)")
    ap.add_argument("--fib-per-file", type=int, default=1, help="FIB XSum items per distractor file (7 files)")
    ap.add_argument("--batch-size", type=int, default=32, help="the same for both")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=str(RESULTS/"bench_lmeval.json"))
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    model, tok = load_model("smollm2-135m-instruct", device="cpu")
    folder = model.name_or_path
    lm = HFLM(pretrained=folder, device="cpu", dtype="float32", batch_size=args.batch_size, add_bos_token=True)
    assert next(lm.model.parameters()).dtype == next(model.parameters()).dtype == torch.float32

    load_before = os.getloadavg()[0]
    recs = [compare("cities", cities_requests(args.n_cities), tok, lm, model, args),
            compare("fib_xsum", fib_requests(tok, args.fib_per_file), tok, lm, model, args, per_item=True)]
    prov = provenance()
    out = dict(machine=dict(cpu=cpu_model() or prov["device_name"], cpu_count=prov["cpu_count"],
                            load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],   # before, after: other jobs on the cores
                            torch_threads=torch.get_num_threads(), torch=prov["packages"]["torch"],
                            transformers=prov["packages"]["transformers"], lm_eval=lm_eval.__version__),
               git_sha=prov["git_sha"], git_dirty=prov["git_dirty"], model="smollm2-135m-instruct", model_folder=Path(folder).name, dtype="float32",
               args=vars(args), workloads=recs)

    print(f"{'workload':9} {'requests':>8} {'tokens':>7} {'tree nodes':>10} {'work ratio':>10} {'same ids':>8} {'max |Δ|':>8}  {'scorer':17} {'median s':>8} {'vs lm-eval':>10}")
    for r in recs:
        w = r["work_ratio"]
        for k, t in r["median_s"].items():
            sp = r["speedup_vs_best_lm_eval"].get(k)
            print(f"{r['workload']:9} {r['n_requests']:8} {r['n_tokens']:7} {w['tree_nodes']:10} {w['ratio']:9.2f}x {r['same_token_ids']:8} {r['max_abs_diff']:8.1e}  {k:17} {t:8.2f} {f'{sp:.2f}x' if sp else '':>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
