"""Shards: a profile that declares `shards` runs as independent papermill executions, one per element of the
split parameters' product, merged into one record; executors `local` (in-process or N processes) and `submitit-local`;
the checkpoint folder the runner hands the kernel. The SLURM path is in tests/test_slurm.py."""
import json, os
from pathlib import Path

import pytest

from factlab.core import FactlabError
from factlab.workbook.cli import main
from factlab.workbook.registry import load_registry, shard_grid
from factlab.workbook.report.render import build_report
from factlab.workbook.report.runs import provenance_words
from factlab.workbook.runs.batch import run_experiment
from factlab.workbook.runs.plan import plan_run
from factlab.workbook.runs.store import checkpoint_dir, read_record

from conftest import toy_registry

BODY = """import os
from pathlib import Path
from factlab.workbook.results import Results
Path(out_dir, 'checkpoints_env.txt').write_text(os.environ.get('FACTLAB_CHECKPOINTS', ''))
Path(os.environ['FACTLAB_CHECKPOINTS'], 'step.txt').write_text('1')   # what a training loop would keep
if str(seeds[0]) in os.environ.get('TOY_FAIL_SEEDS', '').split(','): raise ValueError(f'seed {seeds[0]} failed on purpose')
res = Results(out_dir, experiment='toy'); res.info(model='toy', seeds=seeds)
for s in seeds:
    res.log('acc', 0.6 + 0.05 * s, ci=[0.55 + 0.05 * s, 0.65 + 0.05 * s], n=100, seed=s)   # the same in every condition's shard
    for c in conditions:
        v = 0.6 + 0.05 * s + (0.1 if c == 'b' else 0)
        res.log(f'acc_{c}', v, ci=[v - 0.05, v + 0.05], n=100, seed=s)
res.save()
"""
PARAMS = 'out_dir: str = "."\nconditions: list = ["a"]\nseeds: list = [0]  # non-empty'
CLAIM = dict(id="above", statement="above chance", metric="acc", paper=dict(value=0.7), rule=dict(kind="greater", than=0.5))
GRID = dict(conditions=["a", "b"], seeds=[0, 1])


@pytest.fixture
def toy(run_store):
    profiles = dict(whole=dict(publish=False, params=GRID), grid=dict(params=GRID, shards=["conditions", "seeds"], keep_notebook=True),
                    seeds=dict(publish=False, params=dict(conditions=["a"], seeds=[0, 1]), shards=["seeds"]))
    return load_registry(toy_registry(run_store/"proj", BODY, PARAMS, [CLAIM], profiles))


def _starts(rec): return {e["name"]: e["start"] for e in rec["shards"]}


def test_shard_expansion_names_and_params(toy):
    plan = plan_run("toy", "grid", registry=toy)
    assert list(plan.shards) == ["conditions-a__seeds-0", "conditions-a__seeds-1", "conditions-b__seeds-0", "conditions-b__seeds-1"]
    sp = plan.shards["conditions-b__seeds-1"]
    assert sp.params == dict(conditions=["b"], seeds=[1]) and sp.shard_params == dict(conditions=["b"], seeds=[1])
    assert sp.folder.parent.name == "shards" and sp.folder.name.startswith("conditions-b__seeds-1-")
    assert plan.key != plan_run("toy", "whole", registry=toy).key
    assert list(plan_run("toy", "grid", {"seeds": [3]}, registry=toy).shards) == ["conditions-a__seeds-3", "conditions-b__seeds-3"]
    with pytest.raises(FactlabError, match="no shard 'seeds-9'.*Shards:"): plan_run("toy", "seeds", registry=toy, shard="seeds-9")


@pytest.mark.parametrize("shards, params, message", [(["sedes"], {"seeds": [0]}, "names 'sedes', which its params do not set"),
                                                     (["seeds"], {"seeds": 0}, "must be a list"),
                                                     (["seeds"], {"seeds": []}, "empty list")])
def test_bad_shards_declaration_names_the_profile_and_the_fix(run_store, shards, params, message):
    with pytest.raises(FactlabError, match=f"toy.yaml: profile 'cpu'.*{message}"):
        load_registry(toy_registry(run_store/"proj", BODY, PARAMS, [CLAIM], dict(cpu=dict(params=params, shards=shards))))


def test_an_override_that_empties_a_shard_list_fails_before_any_work(toy):
    with pytest.raises(FactlabError, match="'conditions' is an empty list"): plan_run("toy", "grid", {"conditions": []}, registry=toy)


def test_local_jobs_2_merges_to_the_unsharded_metrics_and_publishes_the_shards(toy):
    whole = run_experiment("toy", "whole", registry=toy)
    rec = run_experiment("toy", "grid", registry=toy, jobs=2, allow_dirty=True)
    assert rec["status"] == "ok" and len(rec["shards"]) == 4 and all(e["status"] == "ok" for e in rec["shards"])
    for key in ("acc", "acc_a", "acc_b"): assert rec["metrics"][key] == whole["metrics"][key]
    assert rec["claims"] == whole["claims"] and rec["merge_notes"] is None
    assert rec["executor"] == dict(kind="local", jobs=2) and rec["info"]["seeds"] == [0, 1]
    assert rec["duration_s"] == pytest.approx(sum(e["duration_s"] for e in rec["shards"]), abs=0.05)
    shard = json.loads(Path(rec["shards"][0]["record"]).read_text())
    assert shard["shard"] == "conditions-a__seeds-0" and shard["shard_params"] == dict(conditions=["a"], seeds=[0]) and shard["profile_params"] == GRID
    pub = Path(os.environ["FACTLAB_REPORTS"])/"toy/grid"
    assert (pub/"record.json").exists() and (pub/"shards/conditions-b__seeds-1/toy.html").exists()
    # the report shows one run, saying how it ran
    out = build_report(toy)
    assert (out["rows"].profile == "grid").sum() == 1
    assert "4 shards (local)" in out["readme"].read_text()
    again = run_experiment("toy", "grid", registry=toy, jobs=2, allow_dirty=True)
    assert again.get("skipped") and _starts(again) == _starts(rec)


def test_failed_shard_fails_the_merge_and_a_rerun_reruns_only_it(toy, monkeypatch, capsys):
    monkeypatch.setenv("TOY_FAIL_SEEDS", "1")
    first = run_experiment("toy", "seeds", registry=toy)                     # --jobs 1: in this process, one after another
    assert first["status"] == "failed" and "seeds-1" in first["error"]["message"] and "failed on purpose" in first["error"]["message"]
    assert [e["status"] for e in first["shards"]] == ["ok", "failed"]
    assert first["metrics"]["acc"]["n_seeds"] == 1                          # the ok shard's metrics, judged, but the run is failed
    assert "failed shard seeds-1" in provenance_words(first)
    monkeypatch.delenv("TOY_FAIL_SEEDS")
    second = run_experiment("toy", "seeds", registry=toy)
    assert second["status"] == "ok" and _starts(second)["seeds-0"] == _starts(first)["seeds-0"] != _starts(second)["seeds-1"]


def test_cli_runs_one_shard_and_exits_1_when_it_fails(toy, monkeypatch):
    reg = str(Path(toy["toy"]["source"]))
    monkeypatch.setenv("TOY_FAIL_SEEDS", "0")
    assert main(["--registry", reg, "run", "toy", "-P", "seeds", "--shard", "seeds-0"]) == 1
    assert main(["--registry", reg, "run", "toy", "-P", "seeds", "--shard", "seeds-7"]) == 2


def test_kernel_sees_its_checkpoint_folder_kept_after_a_failure_and_removed_after_ok(toy, monkeypatch):
    monkeypatch.setenv("TOY_FAIL_SEEDS", "0")
    plan = plan_run("toy", "seeds", registry=toy, shard="seeds-0")
    failed = run_experiment("toy", "seeds", registry=toy, shard="seeds-0")
    folder = checkpoint_dir(plan.folder)
    assert failed["status"] == "failed" and (folder/"step.txt").read_text() == "1"      # kept for the rerun to resume from
    assert (plan.folder/"checkpoints_env.txt").read_text() == str(folder)         # what the kernel saw
    monkeypatch.delenv("TOY_FAIL_SEEDS")
    assert run_experiment("toy", "seeds", registry=toy, shard="seeds-0")["status"] == "ok" and not folder.exists()


def test_submitit_local_executor_runs_the_shards(toy):
    pytest.importorskip("submitit")
    rec = run_experiment("toy", "seeds", registry=toy, executor="submitit-local", slurm=dict(timeout_min=5))
    assert rec["status"] == "ok", rec["error"]
    assert [e["job"]["executor"] for e in rec["shards"]] == ["submitit-local"] * 2 and all(e["job"]["id"] for e in rec["shards"])
    assert rec["metrics"]["acc"]["seeds"] == [0, 1]
