"The runner: validation before any work, failed records, killed runs, skip-if-done and --force."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import yaml

from factlab.cli import main
from factlab.core import FactlabError
from factlab.registry import load_registry
from factlab.runner import _toy_notebook, read_record, run_experiment, runs_dir

from conftest import BIN

BODY = """import os, time
from pathlib import Path
Path(out_dir, 'started').write_text('yes')
time.sleep(float(os.environ.get('TOY_SLEEP', '0')))
if fail: raise ValueError('the toy notebook failed on purpose')
from factlab.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', 0.5 + n / 10, n=100); res.save()
"""
PARAMS = 'out_dir: str = "."\nn: int = 3\nfail: bool = False'


@pytest.fixture
def toy(run_store):
    d = run_store/"proj"
    _toy_notebook(d/"nbs/experiments/toy.ipynb", BODY, PARAMS)
    (d/"experiments.yaml").write_text(yaml.safe_dump({"toy": dict(
        notebook="nbs/experiments/toy.ipynb",
        claims=[dict(id="above", statement="above chance", metric="acc", paper=0.8, rule=dict(kind="greater", than=0.5))],
        profiles={"smoke": {"n": 1}, "cpu": {"n": 3}})}))
    return d/"experiments.yaml"


def _run_dirs():
    return list(runs_dir().glob("toy/*/*")) if runs_dir().exists() else []


@pytest.mark.parametrize("override, message", [({"no_such_param": 1}, "Unknown parameter 'no_such_param'"),
                                               ({"n": "three"}, "Parameter 'n' must be int")])
def test_bad_parameters_fail_before_execution(toy, override, message):
    with pytest.raises(FactlabError, match=message):
        run_experiment("toy", "cpu", overrides=override, registry=load_registry(toy))
    assert _run_dirs() == []                                  # nothing was executed


def test_cli_bad_parameter_exits_2_and_names_it(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "no_such_param=1"]) == 2
    assert "no_such_param" in capsys.readouterr().err and _run_dirs() == []


def test_ok_run_writes_record_with_verdict(toy):
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and rec["metrics"]["acc"]["value"] == pytest.approx(0.8)
    assert rec["claims"]["above"]["verdict"] == "direction-only"   # a single value without CI
    for key in ("experiment", "profile", "params", "seeds", "start", "end", "duration_s", "artifacts", "provenance"):
        assert key in rec
    assert (Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu/record.json").exists()


def test_failing_notebook_gives_failed_record_and_nonzero_exit(toy):
    assert main(["--registry", str(toy), "run", "toy", "-p", "fail=true"]) == 1
    (run_dir,) = _run_dirs()
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
    while time.time() < deadline and not any((d/"started").exists() for d in _run_dirs()): time.sleep(0.5)
    assert any((d/"started").exists() for d in _run_dirs()), "the notebook never started"
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    (run_dir,) = _run_dirs()
    assert read_record(run_dir) is None                       # nothing reads as done
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and not rec.get("skipped")
