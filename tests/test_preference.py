"Preference objectives: the losses against the papers' formulas and against TRL, Mask-DPO's mask, the cached reference, a few DPO steps, the SFT mask."
import contextlib
import copy
import tomllib
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch

from factlab.models import char_tokenizer, load_model, scratch_model
from factlab.preference import (dpo, dpo_loss, ipo, ipo_loss, mask_dpo, pair_batches, pair_logps, preference_data,
                                preference_objective, preference_trace, response_logps, trace_table)
from factlab.train import TrainConfig, fit, masked_sft_loss, sft_batches

LOGPS = dict(chosen_logps=[-10., -12., -3.], rejected_logps=[-11., -9., -30.],
             ref_chosen_logps=[-10.5, -12., -4.], ref_rejected_logps=[-10.5, -10., -29.])


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,?\n")
    return tok, scratch_model(len(tok), (1, 32, 2), n_ctx=64, seed=0)


def _pairs(chosen_labels, rejected_labels, n=4):
    return datasets.Dataset.from_list([dict(prompt="Who is A?\n", chosen_sentences=["Ab c.", "De."], chosen_labels=chosen_labels,
                                            rejected_sentences=["Xy z.", "Fe."], rejected_labels=rejected_labels)] * n)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("kind", ["dpo", "ipo"])
def test_loss_and_gradient_equal_the_formula(kind, beta):
    x = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in LOGPS.items()}
    loss = (dpo_loss if kind == "dpo" else ipo_loss)(**x, beta=beta)
    loss.backward()
    h = (np.array(LOGPS["chosen_logps"]) - LOGPS["ref_chosen_logps"]) - (np.array(LOGPS["rejected_logps"]) - LOGPS["ref_rejected_logps"])
    if kind == "dpo":   # Rafailov et al. 2023, eq. 7: -log sigmoid(beta h); d/dh = -beta sigmoid(-beta h)
        want, dh = np.log1p(np.exp(-beta * h)).mean(), -beta / (1 + np.exp(beta * h)) / len(h)
    else:               # Azar et al. 2023, eq. 17: (h - 1/(2 beta))^2; d/dh = 2 (h - 1/(2 beta))
        want, dh = ((h - 1 / (2 * beta)) ** 2).mean(), 2 * (h - 1 / (2 * beta)) / len(h)
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    for k, sign in dict(chosen_logps=1, rejected_logps=-1, ref_chosen_logps=-1, ref_rejected_logps=1).items():
        np.testing.assert_allclose(x[k].grad.numpy(), sign * dh, rtol=1e-12, atol=1e-15)


def test_mask_dpo_with_every_sentence_unmasked_is_dpo(tiny):
    tok, model = tiny
    data = preference_data(_pairs([1, 1], [0, 0]), tok, model)        # every chosen sentence correct, every rejected one wrong
    assert torch.equal(data["sentence_mask"], data["completion_mask"])
    b = pair_batches(data, TrainConfig(batch_size=3))(0, torch.Generator().manual_seed(0))
    policy = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():                                               # away from the reference: a non-trivial loss
        for p in policy.parameters(): p.add_(0.1 * torch.randn(p.shape, generator=g))
    for beta in (0.1, 1.0):
        a, b_ = mask_dpo(beta)(policy, b)[0], dpo(beta)(policy, b)[0]
        assert abs(a.item() - b_.item()) < 1e-7 and abs(a.item() - np.log(2)) > 1e-4


def test_masked_tokens_get_zero_gradient(tiny):
    tok, model = tiny
    data = preference_data(_pairs([1, 0], [1, 0]), tok, model)
    b = pair_batches(data, TrainConfig(batch_size=2))(0, torch.Generator().manual_seed(0))
    kept = {}
    class Keep(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, **kw):
            out = self.m(**kw); out.logits.retain_grad(); kept["logits"] = out.logits; return out
    mask_dpo()(Keep(copy.deepcopy(model)), b)[0].backward()
    g = kept["logits"].grad.abs().sum(-1)
    m = b["sentence_mask"]
    assert 0 < m.sum() < b["completion_mask"].sum()
    assert (g[m == 0] == 0).all() and (g[m == 1] > 0).all()


def test_reference_runs_once_per_batch_of_pairs_and_dpo_raises_the_margin(tiny):
    tok, model = tiny
    class Counting(torch.nn.Module):
        def __init__(self, m): super().__init__(); self.m, self.calls = m, 0
        def forward(self, **kw): self.calls += 1; return self.m(**kw)
    ref = Counting(copy.deepcopy(model))
    data = preference_data(_pairs([1, 1], [0, 0], n=6), tok, ref, batch_size=4)
    assert ref.calls == 2                                              # 6 pairs, 4 per forward
    policy = copy.deepcopy(model)
    c0, r0 = pair_logps(policy, data)
    cfg = TrainConfig(steps=10, batch_size=4, lr=1e-3, warmup=0, progress=False, eval_every=5)
    run = fit(policy, pair_batches(data, cfg), cfg, objective=dpo(), eval_fn=preference_trace({"train": data}))
    assert ref.calls == 2                                              # training never calls the reference
    c1, r1 = pair_logps(policy, data)
    assert (c1 - r1).mean() > (c0 - r0).mean()
    tr = trace_table(run["history"])
    assert list(tr.step) == [5, 10] and {"train_chosen_logps", "train_rejected_logps", "train_rank_acc"} <= set(tr.columns)
    acc = [h["reward_accuracy"] for h in run["history"] if "reward_accuracy" in h]
    assert acc[0] == 0.0 and acc[-1] == 1.0   # at the reference no pair's implicit reward ranks it right (0 vs 0); after training all do


def test_ipo_objective_averages_per_token(tiny):
    tok, model = tiny
    data = preference_data(_pairs([1, 1], [0, 0]), tok, model)
    b = pair_batches(data, TrainConfig(batch_size=2))(0, torch.Generator().manual_seed(0))
    assert abs(ipo(0.1)(copy.deepcopy(model), b)[0].item() - 25.0) < 1e-6    # h = 0 at the reference: (0 - 1/(2·0.1))² = 25
    with pytest.raises(Exception, match="mask must be"): preference_objective(mask="tokens")


# ---- Against TRL (the `test` extra): the same batches through TRL's DPO, IPO and completion-only SFT losses.
# TRL computes its losses inside trainer methods from `model(..., labels=..., fused_lm_head=True).log_probs` (per-token
# log-probs, zero where the label is -100). The tests run those methods on a minimal trainer (one process, reference
# log-probs precomputed, the defaults of DPOConfig otherwise) and serve them the per-token log-probs factlab computes,
# so both sides score the same numbers; TRL's own fused LM head is compared with factlab's log-probs separately.
TRL_PIN = next(r.split("==")[1] for r in tomllib.loads((Path(__file__).parents[1]/"pyproject.toml").read_text())
               ["project"]["optional-dependencies"]["test"] if r.startswith("trl=="))
PAIRS = datasets.Dataset.from_list([
    dict(prompt="Tell me about Marie Curie.\n", chosen_sentences=["Marie Curie was a physicist.", "She won two Nobel prizes."],
         chosen_labels=[1, 1], rejected_sentences=["Marie Curie was a painter.", "She was born in Warsaw."], rejected_labels=[0, 1]),
    dict(prompt="Who was Alan Turing?\n", chosen_sentences=["Alan Turing was a mathematician.", "He was born in Paris."],
         chosen_labels=[1, 0], rejected_sentences=["Alan Turing was a chef."], rejected_labels=[0]),
    dict(prompt="What is the Nile?\n", chosen_sentences=["The Nile is a river in Africa."], chosen_labels=[1],
         rejected_sentences=["The Nile is a mountain.", "It is in Asia."], rejected_labels=[0, 0])])
BETAS = [0.01, 0.1, 0.5, 2.0]


@pytest.fixture(scope="module")
def trl():
    why = "is not installed: `make test` installs the `test` extra (trl and accelerate, pinned in pyproject.toml, --no-deps)"
    trl = pytest.importorskip("trl", reason=f"TRL {why}")
    pytest.importorskip("accelerate", reason=f"accelerate, which TRL's trainers import, {why}")
    if trl.__version__ != TRL_PIN:
        pytest.skip(f"TRL {trl.__version__} is installed; these checks call internals of the pinned TRL {TRL_PIN} (`make test` installs it)")
    return trl


class ServedLogps(torch.nn.Module):
    "A stand-in for a model with TRL's fused LM head: serves `logps(x, y)` (per-token log p of targets y after x) as its log_probs."
    def __init__(self, logps): super().__init__(); self.logps = logps
    def forward(self, input_ids, labels, fused_lm_head, **_):
        from trl.trainer.utils import FusedCausalLMOutput
        y = labels[:, 1:]
        keep = y != -100
        lp = self.logps(input_ids[:, :-1], y.clamp(min=0)) * keep
        return FusedCausalLMOutput(log_probs=lp, entropy=torch.zeros_like(lp), mean_logits=torch.zeros_like(lp),
                                   is_top1=torch.zeros_like(keep), label_mask=keep)


def _one_process():
    return SimpleNamespace(device=torch.device("cpu"), gather=lambda t: t, gather_for_metrics=lambda t: t, autocast=contextlib.nullcontext)


def trl_pair_loss(loss_type, beta, model, inputs):
    "TRL's `DPOTrainer._compute_loss` for `loss_type` ('sigmoid' is DPO) on a [chosen rows; rejected rows] batch."
    from trl.trainer.dpo_trainer import DPOTrainer
    trainer = SimpleNamespace(model=model, ref_model=None, accelerator=_one_process(), beta=beta, loss_types=[loss_type], loss_weights=[1.0],
                              f_divergence_type="reverse_kl", ld_alpha=None, use_weighting=False, label_smoothing=0.0, aux_loss_enabled=False,
                              precompute_ref_logps=True, args=SimpleNamespace(gradient_checkpointing_kwargs=None),
                              _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
    with torch.no_grad(): return DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_and_ipo_losses_equal_trl_on_random_logps(trl, beta):
    g = torch.Generator().manual_seed(0)
    B, T = 8, 16
    tok = -3 * torch.rand(2 * B, T, generator=g, dtype=torch.float64)    # per-token log-probs of B chosen rows, then B rejected
    start = torch.randint(1, 6, (2 * B, 1), generator=g)                  # the completion's first token, after a prompt
    n_tok = torch.randint(1, T - 5, (2 * B, 1), generator=g)
    completion = ((torch.arange(T + 1) >= start) & (torch.arange(T + 1) < start + n_tok)).long()   # over the T + 1 input ids
    pol = (tok * completion[:, 1:]).sum(-1)
    ref = pol + torch.randn(2 * B, generator=g, dtype=torch.float64)
    inputs = dict(input_ids=torch.zeros(2 * B, T + 1, dtype=torch.long), attention_mask=torch.ones(2 * B, T + 1, dtype=torch.long),
                  completion_mask=completion, ref_chosen_logps=ref[:B], ref_rejected_logps=ref[B:])
    served = ServedLogps(lambda x, y: tok)
    n = n_tok[:, 0]
    ours = dict(sigmoid=dpo_loss(pol[:B], pol[B:], ref[:B], ref[B:], beta),
                ipo=ipo_loss(pol[:B] / n[:B], pol[B:] / n[B:], ref[:B] / n[:B], ref[B:] / n[B:], beta))   # TRL's IPO: per token
    for loss_type, loss in ours.items():
        assert abs(trl_pair_loss(loss_type, beta, served, inputs).item() - loss.item()) < 1e-12
    summed = ipo_loss(pol[:B], pol[B:], ref[:B], ref[B:], beta)            # eq. 17 as written is another number
    assert abs(trl_pair_loss("ipo", beta, served, inputs).item() - summed.item()) > 1e-3


class FixedLogits(torch.nn.Module):
    "A policy already run on one batch: returns its logits for those input ids, so both sides score one forward."
    def __init__(self, input_ids, logits): super().__init__(); self.input_ids, self.logits = input_ids, logits
    def forward(self, input_ids):
        assert torch.equal(input_ids, self.input_ids)
        return SimpleNamespace(logits=self.logits)


@pytest.fixture(scope="module")
def smollm_pairs(trl):
    "SmolLM2 as the reference, one batch of the three pairs, and a policy (SmolLM2 with a perturbed final norm) run on it."
    reference, tok = load_model("smollm2-135m-instruct", device="cpu")
    data = preference_data(PAIRS, tok, reference)
    b = pair_batches(data, TrainConfig(batch_size=len(PAIRS)))(0, torch.Generator().manual_seed(0))
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        policy.model.norm.weight.mul_(1 + 0.1 * torch.randn(policy.model.norm.weight.shape, generator=torch.Generator().manual_seed(0)))
        return reference, FixedLogits(b["input_ids"], policy(input_ids=b["input_ids"]).logits), b


def trl_pair_inputs(b, mask):
    "TRL's DPO batch for factlab's pair batch `b`: input ids, a completion mask over them (here `b[mask]`), reference sums."
    ids = torch.cat([b["input_ids"][:, :1], b["targets"]], 1)
    completion = torch.cat([torch.zeros(len(ids), 1), b[mask]], 1).long()
    length = b["completion_mask"].cumsum(1).argmax(1) + 2                 # each row through its EOS; the rest is padding
    ref = (b["ref_logps"] * b[mask]).sum(-1)
    B = len(ids) // 2
    return dict(input_ids=ids, attention_mask=(torch.arange(ids.shape[1]) < length[:, None]).long(), completion_mask=completion,
                ref_chosen_logps=ref[:B], ref_rejected_logps=ref[B:])


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_ipo_and_mask_dpo_objectives_equal_trl_on_a_smollm2_batch(smollm_pairs, beta):
    _, policy, b = smollm_pairs
    served = ServedLogps(lambda x, y: response_logps(policy, dict(input_ids=x, targets=y)))
    # Mask-DPO has no TRL loss type: it is TRL's DPO with the sentence mask as the completion mask
    for loss_type, objective, mask in (("sigmoid", dpo(beta), "completion_mask"), ("ipo", ipo(beta), "completion_mask"),
                                       ("sigmoid", mask_dpo(beta), "sentence_mask")):
        with torch.no_grad(): ours = objective(policy, b)[0]
        theirs = trl_pair_loss(loss_type, beta, served, trl_pair_inputs(b, mask)).item()
        assert abs(theirs - ours.item()) <= 1e-6 * max(1, abs(theirs)), (loss_type, mask)   # float32: 1e-6 or a few ulps of the loss
    with torch.no_grad(): summed = ipo(beta, length_normalise=False)(policy, b)[0]
    assert abs(trl_pair_loss("ipo", beta, served, trl_pair_inputs(b, "completion_mask")).item() - summed.item()) > 1e-3


def test_trls_fused_head_gives_factlabs_log_probs(smollm_pairs):
    "TRL's own forward (its fused LM head, its reference pass) against factlab's log-probs: equal up to float32 rounding."
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head
    reference, _, b = smollm_pairs
    inputs = trl_pair_inputs(b, "completion_mask")
    fused = copy.deepcopy(reference)
    add_fused_lm_head(fused)
    trainer = SimpleNamespace(model=fused, ref_model=None, accelerator=_one_process(), ld_alpha=None,
                              args=SimpleNamespace(gradient_checkpointing_kwargs=None))
    trl_ref = torch.cat(DPOTrainer.compute_ref_log_probs(trainer, fused, inputs))
    ours = (b["ref_logps"] * b["completion_mask"]).sum(-1)
    # float32: TRL's tiled LM head and factlab's log-softmax over the 49,152 logits differ by up to ~3e-5 per token
    assert ((trl_ref - ours).abs() / ours.abs()).max() < 1e-4
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
    with torch.no_grad():
        per_token = fused(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels, fused_lm_head=True).log_probs
    m = b["completion_mask"].bool()
    assert (per_token[m] - b["ref_logps"][m]).abs().max() < 1e-4 and (per_token[~m] == 0).all()


SFT_QA = [("Q: What is the capital of France?\nA:", " Paris."), ("Q: Who wrote Hamlet?\nA:", " William Shakespeare wrote it."),
          ("Q: How many legs has a spider?\nA:", " Eight.")]


@pytest.mark.parametrize("add_bos", [False, True])
def test_sft_masks_exactly_trls_completion_only_tokens(trl, tmp_path, add_bos):
    "factlab's `sft_batches` + `masked_sft_loss` against TRL's SFTTrainer with completion_only_loss (its tokenisation, collator and loss)."
    model, tok = load_model("smollm2-135m-instruct", device="cpu")
    prompts, completions = zip(*SFT_QA)
    cfg = TrainConfig(batch_size=4)
    x, y = sft_batches(prompts, completions, tok, cfg, add_bos=add_bos)(0, torch.Generator().manual_seed(0))
    pick = torch.randint(0, len(SFT_QA), (cfg.batch_size,), generator=torch.Generator().manual_seed(0)).tolist()   # sft_batches' draw
    bos = tok.bos_token if add_bos else ""          # TRL tokenises the prompt text as it is, adding no BOS for SmolLM2
    trainer = trl.SFTTrainer(model=model, processing_class=tok,
                             args=trl.SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, report_to="none", use_cpu=True, max_length=None),
                             train_dataset=datasets.Dataset.from_list([dict(prompt=bos + p, completion=c) for p, c in SFT_QA]))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in pick])
    assert torch.equal(batch["input_ids"][:, :-1], x) and torch.equal(batch["labels"][:, 1:], y)   # the same tokens, the same masked positions
    assert ((y != -100).sum(1) == torch.tensor([len(tok(completions[i], add_special_tokens=False)["input_ids"]) + 1 for i in pick])).all()
    model.eval()
    with torch.no_grad():
        ours = masked_sft_loss(model, (x, y))
        served = ServedLogps(lambda x_, y_: response_logps(model, dict(input_ids=x_, targets=y_)))
        assert abs(trainer.compute_loss(served, dict(batch)).item() - ours.item()) < 1e-6       # TRL's reduction of the same log-probs
        assert abs(trainer.compute_loss(trainer.model, dict(batch)).item() - ours.item()) < 1e-4  # and its own forward, in float32
