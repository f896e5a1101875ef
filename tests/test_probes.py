"factlab.probes and factlab.recipes.probing on synthetic Gaussian data with a planted truth direction."
import zlib

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

from factlab.core import FactlabError
from factlab.probes import (accuracy, auroc, batch_auroc, best_layer, center, ccs_probe, cell_estimate, compare_probes,
                            compare_train_groups, evaluate, fit_probe, generalization_matrix, headline_metrics, layer_sweep,
                            lr_probe, mass_mean_probe, split_indices, ttpd_probe)
from factlab.stats import Estimate


def cos(a, b): return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def planted(n=500, d=64, sep=3.0, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d); w /= np.linalg.norm(w)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + np.outer((y - 0.5) * sep, w) + offset
    return X, y, w


@pytest.mark.parametrize("kind", ["lr", "mm", "mm_iid"])
def test_probe_recovers_planted_direction(kind):
    X, y, w = planted(offset=5.0)            # an offset that centring must remove
    X = center(X)
    tr, te = split_indices(len(y))
    p = fit_probe(kind, X[tr], y[tr])
    assert cos(p.direction, w) > 0.9
    assert accuracy(y[te], p.predict(X[te])) > 0.9 and auroc(y[te], p.score(X[te])) > 0.95


def test_probe_scale_invariance():
    "A residual stream 1000x larger gives the same direction (probes rescale internally)."
    X, y, w = planted()
    a, b = lr_probe(X, y), lr_probe(1000 * X, y)
    assert cos(a.direction, b.direction) > 0.999


def test_metrics_agree_with_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(10):
        y, s = rng.integers(0, 2, 300), np.round(rng.normal(size=300), 1)
        assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert accuracy(y, s > 0) == pytest.approx(accuracy_score(y, s > 0), abs=1e-12)


def _pairs(n=400, d=32, seed=0):
    X, y, w = planted(n, d, seed=seed)
    Xn = X - 2 * np.outer(X @ w, w) + np.random.default_rng(seed + 1).normal(size=X.shape) * 0.3
    return center(X), center(Xn), y, w


def test_ccs_finds_consistent_direction():
    Xp, Xn, y, w = _pairs()
    p = ccs_probe(Xp, Xn, n_restarts=5, epochs=400, seed=0)  # no labels: sign is arbitrary
    pp, pn = 1 / (1 + np.exp(-p.score(Xp))), 1 / (1 + np.exp(-p.score(Xn)))
    assert np.mean(np.abs(pp - (1 - pn))) < 0.1           # consistent: p(x+) ≈ 1 - p(x-)
    assert abs(cos(p.direction, w)) > 0.9
    assert max(accuracy(y, p.predict(Xp)), 1 - accuracy(y, p.predict(Xp))) > 0.9
    signed = ccs_probe(Xp, Xn, y=y, n_restarts=5, epochs=400, seed=0)
    assert accuracy(y, signed.predict(Xp)) > 0.9 and p.info["loss"] == pytest.approx(signed.info["loss"])


def test_ccs_seeded():
    Xp, Xn, _, _ = _pairs(100, 8)
    a, b = (ccs_probe(Xp, Xn, n_restarts=3, epochs=50, seed=7) for _ in range(2))
    np.testing.assert_array_equal(a.direction, b.direction)


def test_ttpd_general_truth_direction():
    Xp, Xn, y, w = _pairs()
    X, Y = np.concatenate([Xp, Xn]), np.concatenate([y, 1 - y])
    p = ttpd_probe(X, Y, np.r_[np.ones(len(Xp)), -np.ones(len(Xn))])
    assert abs(cos(p.info["t_G"], w)) > 0.9 and accuracy(Y, p.predict(X)) > 0.9


def test_generalization_diagonal_is_held_out():
    "Pure-noise labels, d > n: a probe fits its training rows perfectly; the diagonal must show chance, not 1.0."
    rng = np.random.default_rng(0)
    acts = {"r": center(rng.normal(size=(120, 300))), "s": center(rng.normal(size=(80, 300)))}
    labels = {"r": rng.integers(0, 2, 120), "s": rng.integers(0, 2, 80)}
    gm = generalization_matrix(acts, labels, {"r": ["r"], "r+s": ["r", "s"]}, ["r", "s"], probes=["lr", "mm"])
    diag = gm[gm.held_out]
    assert len(diag) == 6 and (diag.accuracy < 0.8).all()
    assert set(diag[diag.test == "r"].n) == {len(split_indices(120)[1])}
    assert set(gm[~gm.held_out].n) == {80}                     # an untrained-on test set is scored on all its rows


def test_generalization_transfers_shared_direction():
    rng = np.random.default_rng(1); d = 16
    def make(w, n):
        y = rng.integers(0, 2, n); return center(rng.normal(size=(n, d)) + np.outer((y - .5) * 4, w)), y
    sets = dict(a=make(np.eye(d)[0], 300), b=make(np.eye(d)[0], 200), c=make(np.eye(d)[1], 200))
    acts, labels = {k: v[0] for k, v in sets.items()}, {k: v[1] for k, v in sets.items()}
    gm = generalization_matrix(acts, labels, {"a": ["a"]}, ["b", "c"], probes=["lr", "mm"]).set_index(["probe", "test"])
    for kind in ["lr", "mm"]:
        assert gm.loc[(kind, "b"), "auroc"] > 0.95 and abs(gm.loc[(kind, "c"), "auroc"] - 0.5) < 0.15


def test_generalization_ccs_needs_negated_group():
    Xp, Xn, y, _ = _pairs(200, 16)
    acts, labels = {"cities": Xp, "neg_cities": Xn}, {"cities": y, "neg_cities": 1 - y}
    gm = generalization_matrix(acts, labels, {"cities": ["cities"], "cities+neg_cities": ["cities", "neg_cities"]},
                               ["cities", "neg_cities"], probes=["ccs", "ttpd"])
    assert set(gm.train) == {"cities+neg_cities"} and (gm.auroc > 0.9).all()


def test_layer_sweep_picks_planted_layer():
    rng = np.random.default_rng(0); y = rng.integers(0, 2, 300)
    acts = np.stack([rng.normal(size=(300, 8)) + np.outer((y - .5) * s, np.eye(8)[0]) for s in [0, 0.5, 4, 1]], 1)
    sw = layer_sweep(acts, y)
    assert best_layer(sw, "lr") == 2 and best_layer(sw, "mm") == 2
    assert set(sw.columns) >= {"val_accuracy", "test_accuracy", "test_auroc"}


def test_evaluate_cis_bracket_value():
    X, y, _ = planted(300, 16, sep=1.0)
    ev = evaluate(mass_mean_probe(X, y), X, y, n_boot=300)
    for e in ev.values(): assert isinstance(e, Estimate) and e.lo <= e.value <= e.hi and e.n == 300


def _percentile_ci(values, seed, n_boot=2000):
    "The percentile bootstrap of the mean as probes.evaluate and the truth_directions notebook wrote it before factlab.stats."
    x = np.asarray(values, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    return tuple(float(q) for q in np.quantile(x[idx].mean(1), [0.025, 0.975]))


def test_evaluate_matches_the_former_bootstrap():
    "The CIs are the ones the hand-written bootstrap gave: the same seed draws the same resamples for both metrics."
    X, y, _ = planted(60, 8, sep=1.0, seed=4)
    p = mass_mean_probe(X, y)
    score, seed, n_boot = p.score(X), 3, 200
    idx = np.random.default_rng(seed).integers(0, len(y), (n_boot, len(y)))
    ev = evaluate(p, X, y, n_boot=n_boot, seed=seed)
    assert ev["accuracy"].ci == _percentile_ci((y == (score > 0)).astype(float), seed=seed, n_boot=n_boot)
    assert ev["auroc"].ci == tuple(np.nanpercentile([auroc(y[i], score[i]) for i in idx], [2.5, 97.5]).tolist())
    assert ev["accuracy"].value == accuracy(y, score > 0) and ev["auroc"].value == auroc(y, score)


def test_batch_auroc_rows():
    rng = np.random.default_rng(5)
    y, s = rng.integers(0, 2, (20, 30)), np.round(rng.normal(size=(20, 30)), 1)
    y[0] = 1                                                   # one class only: NaN
    got = batch_auroc(y, s)
    assert np.isnan(got[0]) and all(got[i] == auroc(y[i], s[i]) for i in range(1, 20))


def _truth_sets(seed=0):
    rng = np.random.default_rng(seed); d = 12
    def make(w, n):
        y = rng.integers(0, 2, n); return center(rng.normal(size=(n, d)) + np.outer((y - .5) * 1.5, w)), y
    w = np.eye(d)[0]
    sets = dict(cities=make(w, 60), neg_cities=make(w, 60), larger_than=make(np.eye(d)[1], 50),
                smaller_than=make(np.eye(d)[1], 50), sp_en_trans=make(np.eye(d)[1], 40), likely=make(np.eye(d)[2], 30))
    return {k: v[0] for k, v in sets.items()}, {k: v[1] for k, v in sets.items()}


GROUPS = {"cities": ["cities"], "cities+neg_cities": ["cities", "neg_cities"], "larger_than": ["larger_than"],
          "larger_than+smaller_than": ["larger_than", "smaller_than"], "likely": ["likely"]}


def test_headline_metrics_are_estimates_of_cells():
    acts, labels = _truth_sets()
    gm = generalization_matrix(acts, labels, GROUPS, list(acts), probes=["lr", "mm", "ttpd"], n_boot=100)
    h = headline_metrics(gm)
    assert set(h.columns) >= {"probe", "metric", "value", "lo", "hi", "n", "protocol"}
    assert ((h.lo <= h.value) & (h.value <= h.hi)).all()
    row = gm.set_index(["probe", "train", "test"]).loc[("lr", "cities", "neg_cities")]
    neg = h.set_index(["probe", "metric"]).loc[("lr", "negation_auroc")]
    assert cell_estimate(row, "auroc") == Estimate(neg.value, neg.lo, neg.hi, neg.n) and neg.n == 60


def test_comparisons_over_cells():
    "MM − LR and truth − likely: the mean of per-cell differences, its CI the bootstrap over cells."
    acts, labels = _truth_sets(1)
    gm = generalization_matrix(acts, labels, GROUPS, list(acts), probes=["lr", "mm"])
    off = gm[~gm.held_out].pivot_table(index=["train", "test"], columns="probe", values="auroc")
    diff = (off.mm - off.lr).dropna().to_numpy()
    e = compare_probes(gm, "mm", "lr", seed=2)
    assert e.n == len(diff) and e.value == pytest.approx(diff.mean(), abs=1e-12) and e.ci == _percentile_ci(diff, seed=2)
    t = compare_train_groups(gm, [g for g in GROUPS if g != "likely"], "likely", "lr")
    assert t.n == 1 and t.lo == t.hi == t.value                  # sp_en_trans is the only set none of them trained on


def test_errors_name_the_fix():
    X, y, _ = planted(50, 4)
    with pytest.raises(FactlabError, match="'lr'"): fit_probe("lrr", X, y)
    with pytest.raises(FactlabError, match="neg_cities"): fit_probe("ccs", X, y)
    with pytest.raises(FactlabError, match="both labels"): lr_probe(X, np.zeros(50))


def _fake_activations(strength):
    "An activation source for factlab.recipes.probing: truth planted along axis 0 of 4 layers, peaking at layer 2."
    def acts(model_name, set_name, texts, layers=None, **kw):
        y = np.array([int(t.split(":")[1]) for t in texts]) - 0.5
        layers = list(range(4)) if layers is None else list(layers)
        rng = np.random.default_rng(zlib.crc32(f"{model_name}/{set_name}".encode()))
        X = rng.normal(size=(len(texts), len(layers), 6))
        X[:, :, 0] += y[:, None] * (np.array([0, .5, 4, .5])[layers] * strength)[None]
        return torch.tensor(X, dtype=torch.float32)
    return acts


def _fake_data(n=40, seed=0):
    from factlab.recipes.probing import TRAIN_GROUPS
    rng = np.random.default_rng(seed)
    names = dict.fromkeys([s for g in TRAIN_GROUPS.values() for s in g] + ["sp_en_trans"])
    out = {}
    for s in names:
        y = rng.integers(0, 2, n); out[s] = ([f"{s}{i}:{v}" for i, v in enumerate(y)], y)
    return out


def test_recipe_matches_the_former_notebook():
    "headline_estimates and model_gains give the numbers the truth_directions notebook computed by hand."
    from factlab.recipes.probing import TRAIN_GROUPS, headline_estimates, model_gains, probe_model
    data = _fake_data()
    weak, strong = (probe_model(m, data, probes=["lr", "mm"], seeds=[0, 1], activations=_fake_activations(k))
                    for m, k in (("weak", 0.3), ("strong", 1.0)))
    assert strong.layer == 2
    for s, gm in strong.gms.items():
        est = headline_estimates(gm, seed=s)
        diff = (lambda t: (t.mm - t.lr).dropna().to_numpy())(gm[~gm.held_out].pivot_table(index=["train", "test"], columns="probe", values="auroc"))
        assert est["mm_minus_lr_auroc"] == Estimate(float(np.mean(diff)), *_percentile_ci(diff, seed=s), len(diff))
        assert est == strong.estimates[s]
    h = {(m, s): headline_metrics(r.gms[s]).set_index(["metric", "probe"]) for m, r in (("weak", weak), ("strong", strong)) for s in (0, 1)}
    gains = model_gains(weak, strong)
    for key in ("negation_auroc_lr", "transfer_sp_en_trans_accuracy_mm"):
        metric, kind = key.rsplit("_", 1)
        first, last = ([h[m, s].loc[(metric, kind)] for s in (0, 1)] for m in ("weak", "strong"))
        old = [(l.value - f.value, [l.lo - f.hi, l.hi - f.lo]) for f, l in zip(first, last)]
        g = gains[f"{key}_gain"]
        assert g.value == float(np.mean([v for v, _ in old])) and list(g.ci) == list(np.mean([c for _, c in old], 0)) and g.n is None
