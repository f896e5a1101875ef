"The report: every verdict kind from constructed records, seed aggregation, Markdown and HTML."
import json

import pytest

from factlab.report import build_report

REGISTRY = {"exp": dict(id="exp", notebook="x.ipynb", profiles={}, claims=[
    dict(id="repro", statement="above chance, CI clear", paper=0.8, metric="a", rule=dict(kind="greater", than=0.5)),
    dict(id="direction", statement="right side, wrong size", paper=0.8, metric="b", rule=dict(kind="tolerance", tolerance=0.05, null=0.5)),
    dict(id="wrong", statement="below chance", paper=0.8, metric="c", rule=dict(kind="greater", than=0.5)),
    dict(id="missing", statement="never measured", paper=0.8, metric="d", rule=dict(kind="greater", than=0.5)),
    dict(id="trend", statement="grows", metric=["a", "b", "c"], rule=dict(kind="increasing"))]),
    "never": dict(id="never", notebook="y.ipynb", profiles={}, claims=[
    dict(id="x", statement="not run at all", paper=1.0, metric="x", rule=dict(kind="less", than=0.5))])}


def _publish(root, samples, profile="cpu"):
    d = root/"exp"/profile; d.mkdir(parents=True)
    (d/"metrics.json").write_text(json.dumps(dict(samples=samples)))
    (d/"record.json").write_text(json.dumps(dict(experiment="exp", profile=profile, status="ok",
                                                 info=dict(model="m", scale="s"), provenance={})))


def test_verdicts_and_seed_aggregation(tmp_path):
    _publish(tmp_path, {"a": [dict(value=v, n=50, seed=s) for s, v in [(1, 0.90), (2, 0.92), (3, 0.91)]],
                        "b": [dict(value=0.65, ci=[0.6, 0.7], n=100)],
                        "c": [dict(value=0.40, ci=[0.35, 0.45], n=100)]})
    rows = build_report(REGISTRY, tmp_path)["rows"].set_index("claim")
    assert rows.verdict.to_dict() == {"repro": "reproduced", "direction": "direction-only", "wrong": "not-reproduced",
                                      "missing": "not-run", "trend": "not-reproduced", "x": "not-run"}
    assert rows.loc["repro", "measured"] == pytest.approx(0.91)          # mean over three seeds
    lo, hi = rows.loc["repro", "ci"]
    assert 0.89 <= lo < 0.91 < hi <= 0.93


def test_markdown_and_html_written(tmp_path):
    _publish(tmp_path, {"a": [dict(value=0.9, ci=[0.85, 0.95], n=10)]})
    out = build_report(REGISTRY, tmp_path)
    md, page = out["readme"].read_text(), out["html"].read_text()
    assert "| exp | above chance, CI clear | cpu | m | s | 0.800 | 0.900 [0.850, 0.950] (n=10) | reproduced |" in md
    assert "not run at all" in md and "<table" in page and (tmp_path/"exp/claims.csv").exists()
    assert "data:image/png;base64" in page                              # the claims figure is embedded
