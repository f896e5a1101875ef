"The report: every verdict kind from constructed records, seed aggregation, profile order, Markdown and HTML, and the published reports re-judged."
import json

import pytest

from factlab.registry import judge_claims, load_registry
from factlab.report import build_report, collect_runs

from conftest import ROOT

PROFILES = {"gpu": dict(order=0, measures_all_claims=True), "cpu": dict(order=1), "smoke": dict(order=2, publish=False)}
REGISTRY = {"exp": dict(id="exp", notebook="x.ipynb", profiles=PROFILES, claims=[
    dict(id="repro", statement="above chance, CI clear", paper=dict(value=0.8), metric="a", rule=dict(kind="greater", than=0.5)),
    dict(id="direction", statement="right side, wrong size", paper=dict(value=0.8, where="Table 2"), metric="b", rule=dict(kind="tolerance", tolerance=0.05, chance=0.5)),
    dict(id="wrong", statement="below chance", paper=dict(value=0.8), metric="c", rule=dict(kind="greater", than=0.5)),
    dict(id="missing", statement="never measured", paper=dict(value=0.8), metric="d", rule=dict(kind="greater", than=0.5)),
    dict(id="trend", statement="grows", paper={}, metric=["a", "b", "c"], rule=dict(kind="increasing"))]),
    "never": dict(id="never", notebook="y.ipynb", profiles=PROFILES, claims=[
    dict(id="x", statement="not run at all", paper=dict(note="qualitative"), metric="x", rule=dict(kind="less", than=0.5))])}


def _publish(root, samples, profile="cpu"):
    d = root/"exp"/profile; d.mkdir(parents=True)
    (d/"metrics.json").write_text(json.dumps(dict(samples=samples)))
    (d/"record.json").write_text(json.dumps(dict(experiment="exp", profile=profile, status="ok",
                                                 info=dict(model="m", scale="s"), provenance={})))


SAMPLES = {"a": [dict(value=v, n=50, seed=s) for s, v in [(1, 0.90), (2, 0.92), (3, 0.91)]],
           "b": [dict(value=0.65, ci=[0.6, 0.7], n=100)],
           "c": [dict(value=0.40, ci=[0.35, 0.45], n=100)]}


def test_verdicts_and_seed_aggregation(tmp_path):
    _publish(tmp_path, SAMPLES)
    rows = build_report(REGISTRY, tmp_path)["rows"].set_index("claim")
    assert rows.verdict.to_dict() == {"repro": "reproduced", "direction": "direction-only", "wrong": "not-reproduced",
                                      "missing": "not-run", "trend": "not-reproduced", "x": "not-run"}
    assert rows.loc["repro", "measured"] == pytest.approx(0.91)          # mean over three seeds
    lo, hi = rows.loc["repro", "ci"]
    assert 0.89 <= lo < 0.91 < hi <= 0.93


def test_missing_metric_of_a_profile_that_measures_all_claims_is_not_silent(tmp_path):
    _publish(tmp_path, SAMPLES, profile="gpu")
    out = build_report(REGISTRY, tmp_path)
    rows = out["rows"].set_index("claim")
    assert rows.loc["missing", "verdict"] == "missing-metric" and rows.loc["x", "verdict"] == "not-run"
    assert "1 missing-metric" in out["readme"].read_text()


def test_runs_follow_the_profiles_order(tmp_path):
    _publish(tmp_path, SAMPLES, profile="cpu"); _publish(tmp_path, SAMPLES, profile="gpu")
    assert [r["profile"] for r in collect_runs(tmp_path, REGISTRY)] == ["gpu", "cpu"]
    rows = build_report(REGISTRY, tmp_path)["rows"]
    assert list(rows[rows.claim == "repro"].profile) == ["gpu", "cpu"]


def test_markdown_and_html_written(tmp_path):
    _publish(tmp_path, {"a": [dict(value=0.9, ci=[0.85, 0.95], n=10)]})
    out = build_report(REGISTRY, tmp_path)
    md, page = out["readme"].read_text(), out["html"].read_text()
    assert "| exp | above chance, CI clear | cpu | m | s | 0.800 | 0.900 [0.850, 0.950] (n=10) | reproduced |" in md
    assert "| 0.800 (Table 2) |" in md and "| qualitative |" in md     # the paper's value with where, or its note
    assert "not run at all" in md and "<table" in page and (tmp_path/"exp/claims.csv").exists()
    assert "data:image/png;base64" in page                              # the claims figure is embedded


def test_published_records_keep_their_verdicts():
    "The runs in reports/ were judged with the registry of their day: the current registry gives the same verdicts."
    reg, runs = load_registry(), collect_runs(ROOT/"reports")
    assert runs, "no published runs under reports/"
    for run in runs:
        now = judge_claims(reg[run["experiment"]], run["metrics"], run["profile"])
        then = {k: c["verdict"] for k, c in run["claims"].items()}
        assert {k: j["verdict"] for k, j in now.items() if k in then} == then, run["experiment"]
