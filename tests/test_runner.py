"The runner: validation before any work, failed records, killed runs, profiles as data, skip-if-done keyed by the code a run imported."
import hashlib, json, os, shutil, signal, subprocess, time
from pathlib import Path

import pytest

import factlab
from factlab.core import FactlabError
from factlab.core import runs_dir
from factlab.workbook.cli import main
from factlab.workbook.registry import load_registry
from factlab.workbook.runs.batch import run_experiment
from factlab.workbook.runs.store import read_record

from conftest import BIN, toy_registry

BODY = """import os, time
from pathlib import Path
Path(out_dir, 'started').write_text('yes')
time.sleep(float(os.environ.get('TOY_SLEEP', '0')))
if fail: raise ValueError('the toy notebook failed on purpose')
from factlab.workbook.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', 0.5 + n / 10, n=100); res.save()
"""
PARAMS = 'out_dir: str = "."\nn: int = 3\nfail: bool = False'
CLAIM = dict(id="above", statement="above chance", metric="acc", paper=dict(value=0.8), rule=dict(kind="greater", than=0.5))


def _toy_registry(d, claims=(CLAIM,), **profiles):
    "A toy experiment `nbs/experiments/toy.yaml` with its notebook beside it; returns the registry folder."
    profiles = profiles or {"smoke": dict(publish=False, params={"n": 1}), "cpu": dict(measures_all_claims=True, params={"n": 3})}
    return toy_registry(d, BODY, PARAMS, claims, profiles)


@pytest.fixture
def toy(run_store):
    return _toy_registry(run_store/"proj")


def _results():
    "The toy runs' results: one link per run key, to the attempt folder that holds it."
    return [p for p in runs_dir().glob("toy/*/*") if p.is_symlink()] if runs_dir().exists() else []


def _attempts():
    "Every attempt folder of the toy runs, finished or not."
    return list(runs_dir().glob("toy/*/*.attempt-*")) if runs_dir().exists() else []


@pytest.mark.parametrize("override, message", [({"no_such_param": 1}, "Unknown parameter 'no_such_param'"),
                                               ({"n": "three"}, "Parameter 'n' must be int")])
def test_bad_parameters_fail_before_execution(toy, override, message):
    with pytest.raises(FactlabError, match=message):
        run_experiment("toy", "cpu", overrides=override, registry=load_registry(toy))
    assert _attempts() == []                                  # nothing was executed


def test_cli_bad_parameter_exits_2_and_names_it(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "no_such_param=1"]) == 2
    assert "no_such_param" in capsys.readouterr().err and _attempts() == []


def test_ok_run_writes_record_with_verdict(toy):
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and rec["metrics"]["acc"]["value"] == pytest.approx(0.8)
    assert rec["claims"]["above"]["verdict"] == "direction-only"   # a single value without CI
    for key in ("experiment", "profile", "params", "seeds", "start", "end", "duration_s", "artifacts", "provenance", "code"):
        assert key in rec
    assert (Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu/record.json").exists()


def test_failing_notebook_gives_failed_record_and_nonzero_exit(toy):
    assert main(["--registry", str(toy), "run", "toy", "-p", "fail=true"]) == 1
    (run_dir,) = _results()                                   # no earlier result: the failure is the result
    rec = read_record(run_dir)
    assert rec["status"] == "failed" and "failed on purpose" in rec["error"]["message"]
    assert (run_dir/"toy.ipynb").exists()                     # the executed notebook, for debugging


def test_skip_if_done_and_force(toy, capsys):
    reg = load_registry(toy)
    first = run_experiment("toy", "cpu", registry=reg)
    again = run_experiment("toy", "cpu", registry=reg)
    assert again.get("skipped") and again["start"] == first["start"]
    forced = run_experiment("toy", "cpu", registry=reg, force=True)
    assert not forced.get("skipped") and forced["start"] != first["start"]


def test_killed_run_leaves_no_done_record_and_is_redone(toy):
    env = {**os.environ, "TOY_SLEEP": "120"}
    proc = subprocess.Popen([str(BIN/"factlab"), "--registry", str(toy), "run", "toy", "--profile", "cpu"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and not any((d/"started").exists() for d in _attempts()): time.sleep(0.5)
    assert any((d/"started").exists() for d in _attempts()), "the notebook never started"
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    (attempt,) = _attempts()
    assert read_record(attempt) is None and _results() == []  # nothing reads as done
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and not rec.get("skipped")


# ---- profiles declared as data ----

def test_profile_that_measures_all_claims_fails_on_a_missing_metric(run_store):
    typo = dict(CLAIM, id="typo", metric="acc_typo")
    reg = load_registry(_toy_registry(run_store/"proj", claims=(CLAIM, typo)))
    rec = run_experiment("toy", "cpu", registry=reg)
    assert rec["status"] == "failed"
    assert "claim 'typo'" in rec["error"]["message"] and "'acc_typo'" in rec["error"]["message"]
    assert rec["claims"]["typo"]["verdict"] == "missing-metric"
    assert not (Path(os.environ["FACTLAB_REPORTS"])/"toy").exists()      # a failed run is not published
    smoke = run_experiment("toy", "smoke", registry=reg)                  # smoke does not measure every claim
    assert smoke["status"] == "ok" and smoke["claims"]["typo"]["verdict"] == "not-run"


def test_publish_and_keep_notebook_come_from_the_profile(run_store):
    reg = load_registry(_toy_registry(run_store/"proj", quick=dict(publish=False, params={"n": 1}),
                                      big=dict(keep_notebook=True, params={"n": 2})))
    reports = Path(os.environ["FACTLAB_REPORTS"])
    assert run_experiment("toy", "quick", registry=reg)["status"] == "ok" and not (reports/"toy/quick").exists()
    assert run_experiment("toy", "big", registry=reg)["status"] == "ok"
    assert (reports/"toy/big/record.json").exists() and (reports/"toy/big/toy.ipynb").exists() and (reports/"toy/big/toy.html").exists()


# ---- the run key follows the code a run imported ----

@pytest.fixture
def own_factlab(run_store, monkeypatch):
    "A copy of the factlab package that the notebook kernels import instead of the checkout's (edited by the tests)."
    pkg = run_store/"pkg"
    shutil.copytree(Path(factlab.__file__).parent, pkg/"factlab", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
    return pkg/"factlab"


def test_record_lists_the_imported_modules_with_their_hashes(toy, own_factlab):
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    code = rec["code"]
    assert {"factlab", "factlab.workbook.results", "factlab.core"} <= set(code) and "factlab.recipes.fib" not in code
    assert Path(code["factlab.workbook.results"]["file"]) == own_factlab/"workbook"/"results.py"
    assert code["factlab.workbook.results"]["sha256"] == hashlib.sha256((own_factlab/"workbook"/"results.py").read_bytes()).hexdigest()


def test_editing_an_imported_module_reruns(toy, own_factlab, capsys):
    reg = load_registry(toy)
    first = run_experiment("toy", "cpu", registry=reg)
    with open(own_factlab/"workbook"/"results.py", "a") as f: f.write("\n# an edit\n")
    again = run_experiment("toy", "cpu", registry=reg)
    assert not again.get("skipped") and again["start"] != first["start"] and again["status"] == "ok"
    assert "factlab.workbook.results" in capsys.readouterr().out                  # the rerun says why


def test_editing_a_module_the_run_did_not_import_skips(toy, own_factlab):
    reg = load_registry(toy)
    first = run_experiment("toy", "cpu", registry=reg)
    with open(own_factlab/"recipes"/"fib.py", "a") as f: f.write("\n# an edit\n")
    again = run_experiment("toy", "cpu", registry=reg)
    assert again.get("skipped") and again["start"] == first["start"]


def test_a_record_without_code_is_rerun(toy):
    reg = load_registry(toy)
    first = run_experiment("toy", "cpu", registry=reg)
    (run_dir,) = _results()
    rec = read_record(run_dir); del rec["code"]; (run_dir/"record.json").write_text(json.dumps(rec))
    assert not run_experiment("toy", "cpu", registry=reg).get("skipped")
