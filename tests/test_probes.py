"factlab.probes on synthetic Gaussian data with a planted truth direction."
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from factlab.core import FactlabError
from factlab.probes import (accuracy, auroc, best_layer, center, ccs_probe, evaluate, fit_probe, generalization_matrix,
                            layer_sweep, lr_probe, mass_mean_probe, split_indices, ttpd_probe)


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
    assert ev["accuracy_ci"][0] <= ev["accuracy"] <= ev["accuracy_ci"][1]
    assert ev["auroc_ci"][0] <= ev["auroc"] <= ev["auroc_ci"][1] and ev["n"] == 300


def test_errors_name_the_fix():
    X, y, _ = planted(50, 4)
    with pytest.raises(FactlabError, match="'lr'"): fit_probe("lrr", X, y)
    with pytest.raises(FactlabError, match="neg_cities"): fit_probe("ccs", X, y)
    with pytest.raises(FactlabError, match="both labels"): lr_probe(X, np.zeros(50))
