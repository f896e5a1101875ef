"The report: every verdict kind from constructed records, seed aggregation, profile order, per-paper sections, stale and dirty warnings, skipped records, a self-contained page, and the published reports re-judged."
import base64, json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

import factlab
from factlab.core import file_sha256
from factlab.workbook.claims import judge_claims
from factlab.workbook.registry import load_registry
from factlab.workbook.report.model import claims_rows
from factlab.workbook.report.render import build_report
from factlab.workbook.report.runs import collect_runs

from conftest import ROOT

PROFILES = {"gpu": dict(order=0, measures_all_claims=True), "cpu": dict(order=1), "smoke": dict(order=2, publish=False)}
REGISTRY = {"exp": dict(id="exp", notebook="x.ipynb", paper="A Paper About Things (Roe, 2024; arXiv 2401.01234)", reference="https://example.org/code",
                        profiles=PROFILES, claims=[
    dict(id="repro", statement="above chance, CI clear", paper=dict(value=0.8), metric="a", rule=dict(kind="greater", than=0.5)),
    dict(id="direction", statement="right side, wrong size", paper=dict(value=0.8, where="Table 2"), metric="b", rule=dict(kind="tolerance", tolerance=0.05, chance=0.5)),
    dict(id="wrong", statement="below chance", paper=dict(value=0.8), metric="c", rule=dict(kind="greater", than=0.5)),
    dict(id="missing", statement="never measured", paper=dict(value=0.8), metric="d", rule=dict(kind="greater", than=0.5)),
    dict(id="trend", statement="grows", paper={}, metric=["a", "b", "c"], rule=dict(kind="increasing"))]),
    "never": dict(id="never", notebook="y.ipynb", paper="Another Paper (2023)", profiles=PROFILES, claims=[
    dict(id="x", statement="not run at all", paper=dict(note="qualitative"), metric="x", rule=dict(kind="less", than=0.5))])}
CORE = Path(factlab.__file__).parent/"core.py"
CURRENT_CODE = {"factlab.core": dict(file="factlab/core.py", sha256=file_sha256(CORE))}


def _publish(root, samples, profile="cpu", figures=(), **record):
    "A published run of `exp`: metrics.json with `samples` and captions, record.json (clean, current code unless overridden), figures."
    d = root/"exp"/profile; (d/"figures").mkdir(parents=True)
    for name in figures:
        fig, ax = plt.subplots(figsize=(2, 1.5)); ax.plot([0, 1]); fig.savefig(d/"figures"/f"{name}.png"); plt.close(fig)
    (d/"metrics.json").write_text(json.dumps(dict(samples=samples, figures={f: f"what {f} shows" for f in figures[:1]})))
    rec = dict(experiment="exp", profile=profile, status="ok", info=dict(model="m", scale="s"), code=CURRENT_CODE,
               provenance=dict(git_sha="0123456789abcdef", git_dirty=False, device="cpu", device_name="x86_64", cpu_count=2))
    (d/"record.json").write_text(json.dumps({**rec, **record}))
    return d


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
    # verdict beside ours, the paper's number, and the model and scale of the run
    assert "| above chance, CI clear | 🟢 **reproduced** | 0.900 [0.850, 0.950] (n=10) | 0.800 | — | cpu | m | s |" in md
    assert "| 0.800 (Table 2) |" in md and "| qualitative |" in md     # the paper's value with where, or its note
    assert "not run at all" in md and "<table" in page and (tmp_path/"exp/claims.csv").exists()
    assert "data:image/png;base64" in page                              # the claims figure is embedded


def test_one_section_per_paper_with_counted_verdicts(tmp_path):
    _publish(tmp_path, SAMPLES, figures=("accuracy_by_size", "layer_sweep__tiny"))
    out = build_report(REGISTRY, tmp_path)
    md, page = out["readme"].read_text(), out["html"].read_text()
    for exp_id, title in [("exp", "A Paper About Things"), ("never", "Another Paper (2023)")]:
        section = page.split(f'<section id="{exp_id}">')[1].split("</section>")[0]
        assert title in section and f'href="#{exp_id}"' in page          # its section, linked from the table of papers
        assert f'<a id="{exp_id}"></a>' in md and title in md
    exp = page.split('<section id="exp">')[1].split("</section>")[0]
    assert '<span class="chip v-reproduced">✔ 1 reproduced</span>' in exp and '<span class="chip v-not-reproduced">✘ 2 not-reproduced</span>' in exp
    assert '<td class="v v-direction-only">◐ direction-only</td>' in exp          # colour, mark and word
    assert '<a href="https://arxiv.org/abs/2401.01234">arXiv 2401.01234</a>' in exp
    # captions: as saved, else read off the file name
    assert "what accuracy_by_size shows" in exp and "layer sweep: tiny" in exp and "what accuracy_by_size shows" in md
    assert "commit 0123456789" in exp and "clean tree" in exp and "2 CPU cores" in exp   # provenance in words
    assert 'class="warn"' not in exp and "All 1 published runs match" in page


def test_stale_and_dirty_runs_are_flagged(tmp_path):
    nb = tmp_path/"nbs"/"x.ipynb"; nb.parent.mkdir(); nb.write_text("{}")
    reg = {**REGISTRY, "exp": dict(REGISTRY["exp"], root=nb.parent)}
    _publish(tmp_path, SAMPLES, profile="gpu", notebook_sha256=file_sha256(nb),
             code={"factlab.core": dict(file="factlab/core.py", sha256="0" * 64)})                   # code changed since
    _publish(tmp_path, SAMPLES, profile="cpu", notebook_sha256="f" * 64,                              # notebook changed since
             provenance=dict(git_sha="0123456789abcdef", git_dirty=True))                            # and a dirty tree
    out = build_report(reg, tmp_path)
    md, page = out["readme"].read_text(), out["html"].read_text()
    warnings = [w.split("</div>")[0] for w in page.split('<div class="warn" role="alert">')[1:]]
    assert any("gpu run" in w and "Stale: factlab code changed since this run (factlab.core)" in w for w in warnings)
    assert any("cpu run" in w and "Stale: its notebook x.ipynb changed" in w for w in warnings)
    assert any("cpu run" in w and "Dirty: it ran from a working tree with uncommitted changes on commit 0123456789" in w for w in warnings)
    assert not any("gpu run" in w and ("notebook" in w or "Dirty" in w) for w in warnings)
    assert "2 of 2 published runs carry a warning" in page and "2 of 2 published runs carry a warning" in md
    assert "⚠️ **cpu run — Dirty:" in md


def test_unreadable_records_are_skipped_and_named(tmp_path):
    _publish(tmp_path, SAMPLES)
    bad = {"truncated": '{"experiment": "exp", "prof', "foreign": json.dumps([1, 2, 3]),
           "missing_keys": json.dumps(dict(experiment="exp")), "unknown": json.dumps(dict(experiment="zzz", profile="cpu", status="ok", metrics={}))}
    for profile, text in bad.items():
        (tmp_path/"exp"/profile).mkdir(); (tmp_path/"exp"/profile/"record.json").write_text(text)
    (tmp_path/"exp"/"badmetrics").mkdir(); (tmp_path/"exp"/"badmetrics"/"record.json").write_text(json.dumps(dict(experiment="exp", profile="badmetrics", status="ok")))
    (tmp_path/"exp"/"badmetrics"/"metrics.json").write_text('{"samples": {"a": [{"nope": 1}]}}')
    out = build_report(REGISTRY, tmp_path)
    assert sorted(Path(p).parent.name for p, _ in out["skipped"]) == ["badmetrics", "foreign", "missing_keys", "truncated", "unknown"]
    assert out["rows"].set_index("claim").loc["repro", "verdict"] == "reproduced"         # the good run still counts
    md, page = out["readme"].read_text(), out["html"].read_text()
    for name in bad:
        assert f"exp/{name}/record.json" in md.split("## Skipped records")[1] and f"exp/{name}/record.json" in page.split("Skipped records")[1]
    assert "JSONDecodeError" in md and "not in the registry" in md


class _Loads(HTMLParser):
    "Everything a page would load: src/href of img, script, link, iframe, source, embed, object; and CSS url()s."
    def __init__(self):
        super().__init__(); self.loads, self.imgs, self.css = [], [], ""
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("img", "script", "link", "iframe", "source", "embed", "object", "video", "audio"):
            self.loads += [a[k] for k in ("src", "href", "data", "srcset") if a.get(k)]
        if tag == "img": self.imgs.append(a.get("src", ""))
        if a.get("style"): self.css += a["style"]
    def handle_data(self, data): self.css += data if "{" in data else ""


def _self_contained(page:str) -> list[str]:
    "The images a page embeds (decoded PNG bytes), after checking that it loads nothing else."
    p = _Loads(); p.feed(page)
    assert all(src.startswith("data:image/png;base64,") for src in p.loads), [s[:80] for s in p.loads if not s.startswith("data:")]
    assert "@import" not in p.css and "url(" not in p.css
    return [base64.b64decode(src.split(",", 1)[1]) for src in p.imgs]


def test_html_is_self_contained(tmp_path):
    d = _publish(tmp_path, SAMPLES, figures=("one", "two"))
    page = build_report(REGISTRY, tmp_path)["html"].read_text()
    embedded = _self_contained(page)
    expected = [f.read_bytes() for f in [*(d/"figures").glob("*.png"), tmp_path/"exp"/"claims.png"]]
    assert len(expected) == 3 and all(png in embedded for png in expected)                # every figure, embedded
    assert '<a href="https://example.org/code">' in page                                     # a plain link to the paper's code is fine
    for loads_from_elsewhere in ['<img src="https://x.org/a.png">', '<link rel="stylesheet" href="//cdn.x/a.css">', "<style>a{background:url(x.png)}</style>"]:
        with pytest.raises(AssertionError): _self_contained(loads_from_elsewhere)


def test_published_page_is_self_contained():
    "reports/index.html loads nothing from elsewhere and embeds every published figure."
    embedded = _self_contained((ROOT/"reports"/"index.html").read_text())
    figures = [*ROOT.glob("reports/*/*/figures/*.png"), *ROOT.glob("reports/*/claims.png")]
    assert figures and all(f.read_bytes() in embedded for f in figures), [f for f in figures if f.read_bytes() not in embedded]


def test_published_records_keep_their_verdicts():
    "The runs in reports/ were judged with the registry of their day: today's rules give the same verdicts, except where a precondition added since makes a claim inconclusive."
    reg, runs = load_registry(), collect_runs(ROOT/"reports")
    assert runs, "no published runs under reports/"
    for run in runs:
        now = judge_claims(reg[run["experiment"]], run["metrics"], run["profile"], run.get("params") or {})
        then = {k: c["verdict"] for k, c in run["claims"].items()}
        for k, j in now.items():
            if k in then:   # the same verdict, or inconclusive now where the recorded one is what the rule alone says
                assert j["verdict"] == then[k] or (j["verdict"] == "inconclusive" and j["reason"] and j["rule_verdict"] == then[k]), (run["experiment"], k)


GATED = {"exp": dict(REGISTRY["exp"], claims=[
    dict(id="gated", statement="needs a fitted model", paper=dict(value=0.8), metric="a", rule=dict(kind="greater", than=0.5),
         requires=[dict(metric="fit", rule=dict(kind="greater", than=0.9), why="the paper's model fits its data", where="Table 1")]),
    dict(id="scaled", statement="needs the paper's steps", paper={}, metric="c", rule=dict(kind="greater", than=0.5),
         requires=[dict(param="steps", rule=dict(kind="greater", than=999), why="the paper trains 1,000 steps")])])}


def test_one_headline_verdict_per_claim_from_the_largest_run_whose_preconditions_hold(tmp_path):
    _publish(tmp_path, {**SAMPLES, "fit": [dict(value=0.5)]}, profile="gpu", params=dict(steps=50))   # largest scale, but unfit
    _publish(tmp_path, {**SAMPLES, "fit": [dict(value=0.95)]}, profile="cpu", params=dict(steps=2000))
    out = build_report(GATED, tmp_path)
    rows = out["rows"]
    head = rows[rows.headline].set_index("claim")
    assert head.profile.to_dict() == {"gated": "cpu", "scaled": "cpu"} and head.verdict.to_dict() == {"gated": "reproduced", "scaled": "not-reproduced"}
    assert list(rows.groupby("claim").headline.sum()) == [1, 1]                          # exactly one per claim
    md = out["readme"].read_text()
    assert "**1 papers, 2 claims, each judged once by its headline run: 1 reproduced, 0 direction-only, 1 not-reproduced, 0 inconclusive" in md
    assert "| cpu (2) |" in md and "Headline verdicts from: cpu (2)." in md             # the index says where headlines come from
    assert "| ↳ supporting run | 🔵 inconclusive |" in md                                # the gpu rows beneath, marked
    assert '<tr class="support">' in out["html"].read_text()


def test_inconclusive_verdicts_name_the_failed_precondition_its_value_and_why(tmp_path):
    _publish(tmp_path, {**SAMPLES, "fit": [dict(value=0.5)]}, profile="cpu", params=dict(steps=50))
    rows = build_report(GATED, tmp_path)["rows"].set_index("claim")
    assert rows.verdict.to_dict() == {"gated": "inconclusive", "scaled": "inconclusive"}
    assert rows.loc["gated", "measured"] == pytest.approx(0.91) and rows.loc["gated", "rule_verdict"] == "reproduced"   # the claim's own value is kept
    assert rows.loc["gated", "reason"] == "fit = 0.5, needs > 0.9: the paper's model fits its data (Table 1)"
    assert rows.loc["scaled", "reason"] == "param steps = 50, needs > 999: the paper trains 1,000 steps"


def test_every_published_inconclusive_verdict_carries_its_value_and_reason():
    "In the published report, an inconclusive claim shows its own measured value and, per failed precondition, the value, the rule and why."
    reg = load_registry()
    rows = claims_rows(reg, collect_runs(ROOT/"reports", reg))
    inconclusive = rows[rows.verdict == "inconclusive"]
    for r in inconclusive.itertuples():
        failed = [p for p in r.preconditions if not p["holds"]]
        assert failed and r.reason and r.measured is not None, (r.experiment, r.claim)
        for p in failed:
            assert p["why"] and p["rule"] and p["metric"] in r.reason and p["why"] in r.reason, (r.experiment, r.claim, p)
            assert p["holds"] is None or f"= {p['measured']:.4g}" in r.reason, (r.experiment, r.claim, p)
