"""CPU training against the compression paper's reference trainer: tokens/s and loss curves, side by side in one run.

The reference trainer is `training_torch/` of github.com/Rai220/compression-drives-truth (with the
`training/tokenizer.py` it imports). It is never copied into factlab: fetch it into a temporary folder
and point the benchmark at it,

    git clone --depth 1 https://github.com/Rai220/compression-drives-truth /tmp/cdt
    python benchmarks/bench_train_reference.py --reference /tmp/cdt/training_torch            # or
    FACTLAB_REFERENCE_TRAINER=/tmp/cdt/training_torch python benchmarks/bench_train_reference.py --steps 60

What runs. The reference's own `train()` (its `tiny` GPT: 4 layers, d_model 256, 4 heads, MLP 4·d with
exact GELU, LayerNorm, learned positions, untied head, context 256; AdamW 3e-4, weight decay 0.01,
warmup + cosine, clip 1.0; fp32 on the CPU) on a corpus file, and factlab's `fit` on the same text
(char tokenizer, `encode_corpus`, `random_windows`) with `scratch_model(vocab, "tiny", n_ctx=256)`,
batch 32x256, same hyperparameters (TrainConfig's defaults are the paper's). factlab's model is
HF GPT-2; two things are set so it computes the same function as the reference's: its MLP activation
is exact GELU (HF GPT-2 defaults to the tanh approximation) and, with `--init reference` (default),
its initial weights are the reference model's for the same seed (GPT-2 `Conv1D` holds the transposed
`nn.Linear` weight); the script checks that both give the same logits. What still differs: the
vocabulary (factlab's char tokenizer adds 4 special tokens), the batches (each trainer draws its own
windows with its own generator), the learning rate of the warmup's first steps (the reference
starts at 1e-7, factlab at lr/warmup), and weight decay (the reference decays biases and norms too).

Interleaving. The machine is shared, so every trainer runs in its own thread, and the threads take
turns: one trainer runs `--chunk` steps while the others wait, then the next (reference, factlab
fp32, factlab fast, ... round-robin over all seeds). A trainer is paused from inside its batch
function (factlab's `fit` takes the batch function as an argument; the reference's `get_batch` is
wrapped), so both trainers run unmodified. Tokens/s of a trainer is the median over its timed chunks
(the first chunk, with warm-up and compilation, excluded), pooled over seeds.

Trainers: `reference` (fp32, as published), `factlab_fp32` (TrainConfig defaults), `factlab_fast`
(cpu_bf16 + cpu_fused_adamw + cpu_compile), and for an ablation (`--trainers`) each switch alone and
`factlab_fp32_gelu_tanh` (scratch_model's own tanh-approximated GELU). The JSON (benchmarks/results/train_reference.json) holds
the machine, the chunk timings, the per-step losses of every run and the summary.
"""
import argparse, contextlib, importlib.util, io, json, os, platform, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from factlab.models import scratch_model, char_tokenizer, n_params
from factlab.train import TrainConfig, fit, random_windows, encode_corpus

OUT = Path(__file__).parent / "results" / "train_reference.json"
FAST = dict(cpu_bf16=True, cpu_fused_adamw=True, cpu_compile=True)
# factlab's trainers: TrainConfig options, and whether the model keeps HF GPT-2's tanh GELU (scratch_model's default)
TRAINERS = dict(factlab_fp32=({}, False), factlab_fast=(FAST, False),
                factlab_bf16=(dict(cpu_bf16=True), False), factlab_bf16_fused=(dict(cpu_bf16=True, cpu_fused_adamw=True), False),
                factlab_fp32_compiled=(dict(cpu_compile=True), False), factlab_fp32_gelu_tanh=({}, True))

def load_reference(path):
    "The reference's `model` and `train` modules from its `training_torch` folder."
    path = Path(path).resolve()
    if not (path / "train.py").exists() or not (path.parent / "training" / "tokenizer.py").exists():
        sys.exit(f"{path} is not training_torch/ of a compression-drives-truth checkout (with training/tokenizer.py next to it): see this script's docstring.")
    sys.path.insert(0, str(path))          # its train.py imports `model`, and appends ../training for `tokenizer`
    mods = {}
    for name in ("model", "train"):
        spec = importlib.util.spec_from_file_location(name, path / f"{name}.py")
        mods[name] = sys.modules[name] = importlib.util.module_from_spec(spec); spec.loader.exec_module(mods[name])
    return mods["model"], mods["train"]

def copy_reference_weights(hf, ref, ids):
    "Load the reference GPT's weights into factlab's HF GPT-2 (Conv1D = transposed Linear); `ids[i]` is factlab's id of the reference's token i."
    t = hf.transformer
    with torch.no_grad():
        t.wte.weight.normal_(0, 0.02)                                  # factlab's special tokens, never in the data
        t.wte.weight[ids] = ref.tok_emb.weight; t.wpe.weight.copy_(ref.pos_emb.weight)
        hf.lm_head.weight.zero_(); hf.lm_head.weight[ids] = ref.head.weight
        for h, b in zip(t.h, ref.blocks):
            for dst, src in [(h.ln_1, b.ln1), (h.ln_2, b.ln2)]: dst.weight.copy_(src.weight); dst.bias.copy_(src.bias)
            for dst, src in [(h.attn.c_attn, b.attn.qkv), (h.attn.c_proj, b.attn.proj), (h.mlp.c_fc, b.mlp[0]), (h.mlp.c_proj, b.mlp[2])]:
                dst.weight.copy_(src.weight.T); dst.bias.copy_(src.bias)
        t.ln_f.weight.copy_(ref.ln_f.weight); t.ln_f.bias.copy_(ref.ln_f.bias)

class Turns(threading.Thread):
    "A trainer in a thread that runs only between `advance()` calls, `chunk` batches at a time."
    def __init__(self, name, seed, fn, chunk, threads):
        super().__init__(daemon=True)
        self.name_, self.seed, self.fn, self.chunk, self.threads = name, seed, fn, chunk, threads
        self.go, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.calls, self.finished, self.error, self.result, self.chunks = 0, False, None, None, []
    def batch_hook(self):
        "Called before every batch: at a chunk boundary, hand the turn back and wait for the next."
        if self.calls % self.chunk == 0: self.done.release(); self.go.acquire()
        self.calls += 1
    def run(self):
        self.go.acquire(); torch.set_num_threads(self.threads)
        try: self.result = self.fn(self.batch_hook)
        except BaseException as e: self.error = e
        finally: self.finished = True; self.done.release()
    def advance(self):
        before = self.calls; t0 = time.perf_counter()
        self.go.release(); self.done.acquire()
        self.chunks.append(dict(steps=self.calls - before, s=time.perf_counter() - t0))
        if self.error: raise self.error

_turn = threading.local()

def hook_reference(train_mod):
    "Wrap the reference's get_batch once: before each batch it calls the hook of the thread calling it."
    get_batch = train_mod.get_batch
    def hooked(*a, **kw): _turn.hook(); return get_batch(*a, **kw)
    train_mod.get_batch = hooked

def reference_runner(train_mod, corpus, steps, seed, tmp):
    "The reference's train() on `corpus`, fp32 on the CPU, its (wrapped) get_batch pausing at the turns."
    def fn(hook):
        _turn.hook = hook
        log = train_mod.train(str(corpus), model_size="tiny", seq_len=256, batch_size=32, lr=3e-4, max_steps=steps,
                              eval_interval=1, save_interval=steps + 1, seed=seed, output_dir=str(tmp / f"ref{seed}"),
                              device="cpu", dtype="float32")
        return dict(losses=[e["train_loss"] for e in log], weights=tmp / f"ref{seed}" / "model_final.pt")
    return fn

def factlab_runner(stream, vocab, ref_model_mod, ref_vocab_ids, steps, seed, init, opts, gelu_tanh=False):
    "factlab's fit on `stream` with the reference's shape (and, for init='reference', its initial weights)."
    def fn(hook):
        model = scratch_model(vocab, "tiny", n_ctx=256, seed=seed, activation="gelu_new" if gelu_tanh else "gelu")
        if init == "reference":
            torch.manual_seed(seed); ref = ref_model_mod.create_model("tiny", len(ref_vocab_ids), max_seq_len=256, device="cpu")
            copy_reference_weights(model, ref, ref_vocab_ids)
        cfg = TrainConfig(steps=steps, batch_size=32, seq_len=256, seed=seed, device="cpu", progress=False, **opts)
        windows = random_windows(stream, cfg)
        def batches(step, g): hook(); return windows(step, g)
        return dict(losses=[h["loss"] for h in fit(model, batches, cfg)["history"]], model=model)
    return fn

def check_same_function(ref_model_mod, vocab, ref_vocab_ids, stream):
    "Max |logit difference| between the reference tiny model and factlab's with the copied weights, fp32, on real text."
    torch.manual_seed(0); ref = ref_model_mod.create_model("tiny", len(ref_vocab_ids), max_seq_len=256, device="cpu").eval()
    hf = scratch_model(vocab, "tiny", n_ctx=256, activation="gelu").eval(); copy_reference_weights(hf, ref, ref_vocab_ids)
    x = stream[:4 * 256].view(4, 256)
    back = torch.full((vocab,), -1, dtype=torch.long); back[ref_vocab_ids] = torch.arange(len(ref_vocab_ids))
    with torch.no_grad(): a = ref(back[x]); b = hf(input_ids=x).logits[..., ref_vocab_ids]
    return (a - b).abs().max().item(), n_params(ref), n_params(hf)

def held_out_loss(r, ref_model_mod, ref_vocab_ids, batches):
    "fp32 cross-entropy of a run's final model on fixed held-out batches (factlab token ids; mapped for the reference)."
    if "model" in r.result: model = r.result["model"].eval(); forward = lambda x: model(input_ids=x).logits
    else:
        model = ref_model_mod.create_model("tiny", len(ref_vocab_ids), max_seq_len=256, device="cpu")
        model.load_state_dict(torch.load(r.result["weights"], weights_only=True)); model.eval()
        back = torch.full((int(ref_vocab_ids.max()) + 1,), -1, dtype=torch.long); back[ref_vocab_ids] = torch.arange(len(ref_vocab_ids))
        forward = lambda x: model(back[x]); batches = [(x, back[y]) for x, y in batches]
    with torch.no_grad():
        return float(np.mean([F.cross_entropy(forward(x).flatten(0, 1), y.flatten()).item() for x, y in batches]))

def data_pipeline(train_mod, stream, reps=200):
    "Seconds per batch of the reference's get_batch and factlab's random_windows (interleaved, medians)."
    cfg = TrainConfig(batch_size=32, seq_len=256); w = random_windows(stream, cfg); g = torch.Generator().manual_seed(0)
    ta, tb = [], []
    for i in range(reps):
        t0 = time.perf_counter(); train_mod.get_batch(stream, 32, 256, i, "cpu"); ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); w(i, g); tb.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)

def load_avg(): return os.getloadavg()

def machine():
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), platform.processor())
    flags = sorted(f for f in ("avx512_bf16", "amx_bf16", "avx512f") if f in lscpu)
    return dict(cpu=model, cores=os.cpu_count(), flags=flags, torch=torch.__version__, threads=torch.get_num_threads())

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default=os.environ.get("FACTLAB_REFERENCE_TRAINER"), help="training_torch/ of a compression-drives-truth checkout")
    ap.add_argument("--steps", type=int, default=100, help="training steps per run (the loss curves' length)")
    ap.add_argument("--chunk", type=int, default=10, help="steps a trainer runs before handing the turn over")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the reference and factlab_fast runs")
    ap.add_argument("--fp32-seeds", type=int, nargs="+", default=None, help="seeds of the factlab_fp32 runs (the seed noise); default --seeds")
    ap.add_argument("--trainers", nargs="+", default=["reference", "factlab_fp32", "factlab_fast"], choices=["reference", *TRAINERS],
                    help="factlab_bf16, factlab_bf16_fused, factlab_fp32_compiled: one switch at a time; factlab_fp32_gelu_tanh: HF's default activation")
    ap.add_argument("--init", choices=["reference", "factlab"], default="reference", help="factlab's initial weights: the reference model's, or scratch_model's own")
    ap.add_argument("--problems", type=int, default=20_000, help="math problems in the corpus (random 50/50, the paper's setting)")
    ap.add_argument("--val-batches", type=int, default=8, help="held-out 32x256 batches every final model is scored on")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    if not a.reference: sys.exit("Give --reference (or FACTLAB_REFERENCE_TRAINER): see this script's docstring for how to fetch it.")
    ref_model_mod, train_mod = load_reference(a.reference)
    from factlab.worlds.math import math_corpus
    load0 = load_avg()
    # the same text for both: the reference reads a file, factlab gets the documents
    texts = list(math_corpus(a.problems, 0.5, "random", seed=42)["text"])
    held_out = list(math_corpus(2000, 0.5, "random", seed=7)["text"])          # another corpus seed: held-out problems
    tmp = Path(tempfile.mkdtemp(prefix="bench_ref_"))
    corpus = tmp / "corpus.txt"; corpus.write_text("\n\n".join(texts) + "\n\n")
    tok = char_tokenizer(texts); vocab = len(tok)
    stream = encode_corpus(texts, tok)
    g = torch.Generator().manual_seed(1234); val = random_windows(encode_corpus(held_out, tok), TrainConfig(batch_size=32, seq_len=256))
    val_batches = [val(i, g) for i in range(a.val_batches)]
    ref_tok = sys.modules["tokenizer"].CharTokenizer().build(corpus.read_text())
    ref_vocab_ids = torch.tensor([tok.convert_tokens_to_ids(ref_tok.idx2char[i]) for i in range(ref_tok.vocab_size)])   # <pad>, <unk> are in both
    diff, n_ref, n_fl = check_same_function(ref_model_mod, vocab, ref_vocab_ids, stream)
    t_ref_batch, t_fl_batch = data_pipeline(train_mod, stream)
    print(f"machine: {machine()}; load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"corpus: {len(stream):,} characters; vocab reference {ref_tok.vocab_size}, factlab {vocab}; params reference {n_ref:,}, factlab {n_fl:,}")
    print(f"same function: max |logit difference| with the reference's weights {diff:.2e} (fp32)")
    print(f"batch construction: reference get_batch {t_ref_batch * 1e3:.2f} ms, factlab random_windows {t_fl_batch * 1e3:.2f} ms per 32x256 batch")
    fp32_seeds = a.fp32_seeds if a.fp32_seeds is not None else a.seeds
    hook_reference(train_mod)
    runs = []
    for name in a.trainers:
        for seed in (fp32_seeds if name == "factlab_fp32" else a.seeds):
            fn = (reference_runner(train_mod, corpus, a.steps, seed, tmp) if name == "reference" else
                  factlab_runner(stream, vocab, ref_model_mod, ref_vocab_ids, a.steps, seed, a.init, *TRAINERS[name]))
            runs.append(Turns(name, seed, fn, a.chunk, a.threads))
    for r in runs: r.start()
    quiet = contextlib.redirect_stdout(io.StringIO()); quiet.__enter__()   # the reference prints a line per step
    t_start = time.perf_counter()
    while not all(r.finished for r in runs):
        for r in runs:
            if r.finished: continue
            r.advance()
            if r.chunks[-1]["steps"]: print(f"  {r.name_:<13} seed {r.seed}: steps {r.calls:>4}  {r.chunks[-1]['s']:6.1f} s  load {load_avg()[0]:.2f}", file=sys.stderr, flush=True)
    for r in runs: r.join()
    quiet.__exit__(None, None, None)
    for r in runs: r.held_out = held_out_loss(r, ref_model_mod, ref_vocab_ids, val_batches)
    load1 = load_avg()
    B = 32 * 256
    summary = {}
    for name in a.trainers:
        rs = [r for r in runs if r.name_ == name]
        timed = [c for r in rs for c in [c for c in r.chunks if c["steps"]][1:]]     # chunk 0 = warm-up, compilation
        tps = float(np.median([B * c["steps"] / c["s"] for c in timed]))
        finals = [float(np.mean(r.result["losses"][-10:])) for r in rs]                  # mean of the last 10 steps' losses
        held = [r.held_out for r in rs]
        sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else None
        summary[name] = dict(tokens_per_s=tps, seeds=[r.seed for r in rs], final_loss=finals, final_loss_mean=float(np.mean(finals)),
                             final_loss_sd=sd(finals), held_out_loss=held, held_out_loss_mean=float(np.mean(held)), held_out_loss_sd=sd(held))
    base = summary.get("reference", {}).get("tokens_per_s")
    print(f"\n{a.steps} steps of 32x256 per run, chunks of {a.chunk} steps interleaved; load average after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; wall {time.perf_counter() - t_start:.0f} s")
    print(f"{'trainer':<14}{'tokens/s':>10}{'vs reference':>14}   held-out loss of the final model per seed (mean ± sd) | train loss, mean of last 10 steps")
    for name, s in summary.items():
        ratio = f"{s['tokens_per_s'] / base:.2f}x" if base else "n/a"
        pm = f" ({s['held_out_loss_mean']:.4f} ± {s['held_out_loss_sd']:.4f})" if s["held_out_loss_sd"] is not None else ""
        print(f"{name:<14}{s['tokens_per_s']:>10,.0f}{ratio:>14}   " + ", ".join(f"{l:.4f}" for l in s["held_out_loss"]) + pm
              + " | " + ", ".join(f"{l:.4f}" for l in s["final_loss"]))
    print("\nloss every 10 steps (seed " + str(a.seeds[0]) + "):")
    first = {name: next(r for r in runs if r.name_ == name) for name in a.trainers}
    print("step  " + "".join(f"{n:>14}" for n in first))
    for i in list(range(9, a.steps, 10)) + ([a.steps - 1] if a.steps % 10 else []):
        print(f"{i + 1:>4}  " + "".join(f"{r.result['losses'][i]:>14.4f}" for r in first.values()))
    res = dict(machine=machine(), load_before=load0, load_after=load1, steps=a.steps, chunk=a.chunk, batch=[32, 256], init=a.init,
               vocab=dict(reference=ref_tok.vocab_size, factlab=vocab), params=dict(reference=n_ref, factlab=n_fl),
               max_logit_difference=diff, batch_ms=dict(reference=t_ref_batch * 1e3, factlab=t_fl_batch * 1e3),
               factlab_fast=FAST, summary=summary,
               ratio={n: s["tokens_per_s"] / base for n, s in summary.items()} if base else None,
               runs=[dict(trainer=r.name_, seed=r.seed, chunks=r.chunks, losses=r.result["losses"], held_out_loss=r.held_out) for r in runs])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"\nwrote {a.out}")

if __name__ == "__main__":
    sys.exit(main())
