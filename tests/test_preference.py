"Preference objectives (issue 13): the losses against the papers' formulas, Mask-DPO's mask, the cached reference, a few DPO steps."
import copy

import datasets
import numpy as np
import pytest
import torch

from factlab.models import char_tokenizer, scratch_model
from factlab.preference import (dpo, dpo_loss, ipo, ipo_loss, mask_dpo, pair_batches, pair_logps, preference_data,
                                preference_objective, preference_trace, trace_table)
from factlab.train import TrainConfig, fit

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
    with torch.no_grad():
        for p in policy.parameters(): p.add_(0.01 * torch.randn_like(p))   # away from the reference: a non-trivial loss
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
    assert run["history"][-1]["reward_accuracy"] >= 0


def test_ipo_objective_averages_per_token(tiny):
    tok, model = tiny
    data = preference_data(_pairs([1, 1], [0, 0]), tok, model)
    b = pair_batches(data, TrainConfig(batch_size=2))(0, torch.Generator().manual_seed(0))
    assert abs(ipo(0.1)(copy.deepcopy(model), b)[0].item() - 25.0) < 1e-6    # h = 0 at the reference: (0 - 1/(2·0.1))² = 25
    with pytest.raises(Exception, match="mask must be"): preference_objective(mask="tokens")
