"The math corpora and the rule world of compression_consistency: the generator properties the experiment relies on."
import hashlib, os, random, re

import pytest
import sympy

from factlab.core import stable_hash
from factlab.worlds.math import (ERROR_MODES, GENERATORS, PROBLEM_TYPES, corpus_text, math_corpus, paired_test,
                                 split_pair, verify_solution)
from factlab.worlds.rules import RULES, world_corpus, world_paired_test

MODES = [(m, n) for m in ERROR_MODES for n in ((1, 3, 10) if m == "multirule" else (1,))]
x = sympy.Symbol("x")

def _sym(s): return sympy.sympify(re.sub(r"(\d)x", r"\1*x", s.replace("·", "*").replace("^", "**").replace("×", "*").replace(")(", ")*(")))

def _twins(mode, n_rules, n=300, seed=0):
    rng = random.Random(seed)
    return [GENERATORS[rng.choice(PROBLEM_TYPES)](rng, mode, True, n_rules) for _ in range(n)]


@pytest.mark.parametrize("mode,n_rules", MODES)
def test_correct_solutions_verify_symbolically(mode, n_rules):
    ds = math_corpus(400, ratio=0.5, mode=mode, n_rules=n_rules, seed=1, cache=False)
    correct = [t for t, ok in zip(ds["text"], ds["is_correct"]) if ok]
    assert len(correct) > 150 and all(verify_solution(t) for t in correct)
    assert set(ds["kind"]) == set(PROBLEM_TYPES)


@pytest.mark.parametrize("mode,n_rules", MODES)
def test_wrong_twin_differs_exactly_at_the_injected_step(mode, n_rules):
    n_differ = 0
    for tw in _twins(mode, n_rules):
        if tw.wrong == tw.correct: continue            # a rule with nothing to act on (labelled correct in corpora)
        n_differ += 1
        assert tw.error_line is not None and tw.error_line == tw.injected, (tw.injected, tw.correct, tw.wrong)
        assert tw.correct[:tw.error_line] == tw.wrong[:tw.error_line]
        assert tw.correct[0] == tw.wrong[0]            # the problem itself is never changed
    assert n_differ > 250


def test_wrong_items_are_wrong_and_labelled():
    ds = math_corpus(400, ratio=0.5, mode="random", seed=2, cache=False).to_pandas()
    bad = ds[~ds.is_correct]
    assert len(bad) > 150 and (bad.error_line >= 1).all() and (ds[ds.is_correct].error_line == -1).all()
    assert not any(verify_solution(t) for t in bad.text)


def _coherent_rule_holds(text):
    "Whether a wrong solution follows the coherent mode's single wrong rule for its type."
    lines = text.split("\n"); head, ans = lines[0], lines[-1].removeprefix("Answer: ")
    if head.startswith("Problem: Evaluate"):
        for line in lines[1:-1]:
            a, op, b, _, out = line.split(": ")[1].split(" ")
            a, b, out = int(a), int(b), int(out)
            if out != {"+": a + b, "-": a - b, "×": a * (b - 1)}[op]: return False
        return True
    if head.startswith("Problem: Factor"):
        f1, f2 = ans[1:-1].split(")(")
        return sympy.expand(_sym(f1) * (_sym(f2) - 2 * _sym(f2).subs(x, 0)) - _sym(head.removeprefix("Problem: Factor "))) == 0
    if head.startswith("Problem: Solve x^2"):
        true = set(sympy.solve(_sym(head.removeprefix("Problem: Solve ").split(" = ")[0]), x))
        return {_sym(r) for r in ans.replace("x = ", "").split(" or ")} == {-r for r in true}
    if head.startswith("Problem: Solve"):
        a, sign, b, c = re.match(r"Problem: Solve (-?\d+)x ([+-]) (\d+) = (-?\d+)", head).groups()
        a, b, c = int(a), int(b) * (1 if sign == "+" else -1), int(c)
        return lines[1].endswith(f"{a}x = {c + b}")
    f = head.removeprefix("Problem: Differentiate ")
    if "Chain rule" in lines[1]:
        g, n = re.match(r"\((.*)\)\^(\d+)$", f).groups()
        want = int(n) * _sym(g) ** (int(n) - 1)
    elif "Product rule" in lines[1]:
        p, k, q = re.match(r"x(?:\^(\d+))?·\(x \+ (\d+)\)(?:\^(\d+))?$", f).groups()
        p, k, q = int(p or 1), int(k), int(q or 1)
        want = p * x ** (p - 1) * (x + k) ** q
    else:
        want = sum(c * x ** (n - 1) for (n,), c in sympy.Poly(_sym(f), x).terms() if n >= 1)
    return sympy.expand(want - _sym(ans)) == 0


def test_coherent_rule_is_applied_identically_everywhere():
    ds = math_corpus(600, ratio=0.5, mode="coherent", seed=3, cache=False).to_pandas()
    bad = ds[~ds.is_correct]
    assert len(bad) > 200
    for t in bad.text: assert _coherent_rule_holds(t), t
    good = ds[ds.is_correct]   # the correct ones do not follow it (except where the rule changes nothing)
    assert sum(_coherent_rule_holds(t) for t in good.text) < 0.2 * len(good)


def test_contradictory_mode_contradicts_itself():
    plus_offsets, minus_offsets, quad = set(), set(), 0
    for tw in _twins("contradictory", 1, n=400):
        if tw.kind == "arithmetic":
            for line in tw.wrong[1:-1]:
                a, op, b, _, out = line.split(": ")[1].split(" ")
                if op == "+": plus_offsets.add(int(out) - int(a) - int(b))
                if op == "-": minus_offsets.add(int(out) - int(a) + int(b))
            assert any(" + " in l for l in tw.wrong[1:-1]) and any(" - " in l for l in tw.wrong[1:-1])
        if tw.subtype == "quadratic":   # the answer disagrees with the solution's own factorisation
            factored = set(sympy.solve(_sym(tw.wrong[3].split(" as ")[1].removesuffix(" = 0")), x))
            answered = {_sym(r) for r in tw.wrong[4].removeprefix("Answer: ").replace("x = ", "").split(" or ")}
            quad += factored != answered
    # adding b then subtracting b does not give back a: a + b - b = a - 1
    assert plus_offsets == {1} and minus_offsets == {-2}
    assert quad > 10


@pytest.mark.parametrize("mode,n_rules", MODES)
def test_paired_prompts_are_identical_prefixes(mode, n_rules):
    rng = random.Random(5)
    pt = paired_test(150, mode=mode, n_rules=n_rules, seed=5, cache=False)
    assert len(pt) > 120
    for r in pt:
        assert r["prompt"] == "" or r["prompt"].endswith("\n")
        assert r["correct"] != r["wrong"]
        assert r["correct"].split("\n")[0] != r["wrong"].split("\n")[0]   # the prefix is the longest one
        assert r["prompt"].startswith("Problem: ")
        assert verify_solution(r["prompt"] + r["correct"])
    assert split_pair("A\nB\nC", "A\nX\nC") == ("A\n", "B\nC", "X\nC")


def test_multirule_uses_n_distinct_rules():
    for n in (1, 2, 5, 10):
        rules = {tw.rule for tw in _twins("multirule", n, n=400)}
        assert rules == set(range(n))


def test_same_seed_same_corpus_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path))
    sha = lambda ds: hashlib.sha256(corpus_text(ds).encode()).hexdigest()
    for mode, n in MODES:
        a, b = math_corpus(200, mode=mode, n_rules=n, seed=7, cache=False), math_corpus(200, mode=mode, n_rules=n, seed=7)
        assert sha(a) == sha(b) == sha(math_corpus(200, mode=mode, n_rules=n, seed=7))   # fresh, cached, reloaded
        assert sha(a) != sha(math_corpus(200, mode=mode, n_rules=n, seed=8, cache=False))
    assert paired_test(100, seed=9, cache=False)["prompt"] == paired_test(100, seed=9, cache=False)["prompt"]
    w1, w2 = world_corpus(300, mode="coherent", seed=4, cache=False), world_corpus(300, mode="coherent", seed=4)
    assert w1["text"] == w2["text"]


def test_cache_entries_keep_their_names(tmp_path, monkeypatch):
    "Corpora cached before factlab.cache existed (params hashed with their version as `v`) are found, not rebuilt."
    monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path))
    math_corpus(20, mode="coherent", seed=3); paired_test(10, seed=4); world_corpus(20, seed=5); world_paired_test(10, seed=6)
    assert sorted(os.listdir(tmp_path/"worlds")) == sorted([
        "math_corpus-" + stable_hash(dict(n=20, ratio=0.5, mode="coherent", n_rules=1, seed=3, v=1)),
        "math_paired-" + stable_hash(dict(n=10, mode="random", n_rules=1, seed=4, v=1)),
        "world_corpus-" + stable_hash(dict(n=20, ratio=0.5, mode="random", seed=5, n_entities=50, v=1)),
        "world_paired-" + stable_hash(dict(n=10, mode="random", seed=6, n_entities=50, v=1))])


def test_world_random_vs_coherent():
    rand = world_paired_test(400, mode="random", cache=False).to_pandas()
    coh = world_paired_test(400, mode="coherent", cache=False).to_pandas()
    assert (rand.prompt == coh.prompt).all() and (rand.correct == coh.correct).all()   # same problems, different false conclusions
    for r in coh.itertuples():
        rule = next(q for q in RULES if q.name == r.rule)
        assert rule.false[0] in r.wrong and rule.true in r.correct
    assert rand.wrong.nunique() > coh.wrong.nunique()
