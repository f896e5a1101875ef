"Fault injection against the runner and the CLI (issue 17): each test is one fault, named for it; each must end clean."
import os, signal, subprocess, time
from pathlib import Path

import pytest
import yaml

import factlab.runner as runner
from factlab.cli import main
from factlab.core import FactlabError, input_fingerprint
from factlab.registry import load_experiment, load_registry
from factlab.runner import inside_store, plan_run, publish_run, read_record, run_experiment, runs_dir

from conftest import BIN, toy_registry

# A toy notebook steered from outside: TOY_SLEEP (seconds), TOY_FAIL (raise), TOY_INPUT (a file it reads and notes as an input).
BODY = """import os, time
from pathlib import Path
print('step 5/10 of the toy', flush=True)
Path(out_dir, 'started').write_text('yes')
time.sleep(float(os.environ.get('TOY_SLEEP', '0')))
if os.environ.get('TOY_FAIL'): raise ValueError('the toy notebook failed on purpose')
if os.environ.get('TOY_INPUT'):
    from factlab.core import note_input
    note_input('data', 'toy.csv', os.environ['TOY_INPUT'], rows=len(Path(os.environ['TOY_INPUT']).read_text().splitlines()))
from factlab.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', 0.5 + n / 10, n=100); res.save()
"""
PARAMS = 'out_dir: str = "."\nn: int = 3  # >= 1; items\nnames: list = ["a"]  # non-empty'
CLAIM = dict(id="above", statement="above chance", metric="acc", paper=dict(value=0.8), rule=dict(kind="greater", than=0.5))


def _registry(d, claims=(CLAIM,), profiles=None):
    return toy_registry(d, BODY, PARAMS, claims, profiles or {"cpu": dict(publish=False, budget_s=60, params={"n": 3})})


@pytest.fixture
def toy(run_store):
    return _registry(run_store/"proj")


def _result():
    "The toy cpu run's result (a link to the attempt holding it), or None."
    links = [p for p in runs_dir().glob("toy/cpu/*") if p.is_symlink()] if runs_dir().exists() else []
    return links[0] if links else None


def _attempts():
    return sorted(runs_dir().glob("toy/cpu/*.attempt-*")) if runs_dir().exists() else []


def _start_cli(toy, *args, **env):
    "`factlab run toy` in a process of its own, once its notebook has started (the notebook then sleeps TOY_SLEEP seconds)."
    before = set(_attempts())
    proc = subprocess.Popen([str(BIN/"factlab"), "--registry", str(toy), "run", "toy", "--profile", "cpu", *args],
                            env={**os.environ, "TOY_SLEEP": "60", **env}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not any((a/"started").exists() for a in set(_attempts()) - before): time.sleep(0.2)
    assert any((a/"started").exists() for a in set(_attempts()) - before), "the notebook never started"
    return proc


def _one_line(err):
    lines = [l for l in err.strip().splitlines() if l.startswith("factlab: ") and "warning" not in l]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- 17.1: nothing lost ----

def test_rerun_killed_keeps_previous_result(toy):
    first = run_experiment("toy", "cpu", registry=load_registry(toy))
    proc = _start_cli(toy, "--force")
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    kept = read_record(_result())
    assert kept["status"] == "ok" and kept["start"] == first["start"]         # the finished result is untouched
    assert run_experiment("toy", "cpu", registry=load_registry(toy)).get("skipped")


def test_failed_rerun_keeps_previous_ok_result_and_its_own_folder(toy, monkeypatch):
    first = run_experiment("toy", "cpu", registry=load_registry(toy))
    monkeypatch.setenv("TOY_FAIL", "1")
    failed = run_experiment("toy", "cpu", registry=load_registry(toy), force=True)
    assert failed["status"] == "failed" and read_record(_result())["start"] == first["start"]
    (kept,) = [a for a in _attempts() if a != _result().resolve()]
    assert read_record(kept)["status"] == "failed" and (kept/"toy.ipynb").exists()   # kept for inspection
    monkeypatch.delenv("TOY_FAIL")
    again = run_experiment("toy", "cpu", registry=load_registry(toy), force=True)
    assert again["status"] == "ok" and _attempts() == [_result().resolve()]      # a success clears stale attempts


def test_second_run_same_key_refused(toy, capsys):
    proc = _start_cli(toy)
    try:
        assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) == 1
        assert f"already running (pid {proc.pid}" in _one_line(capsys.readouterr().err)
    finally:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    assert _result() is None                                                     # the refused run wrote nothing


def test_ctrl_c_writes_interrupted_record(toy):
    proc = _start_cli(toy)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (attempt,) = _attempts()
    assert read_record(attempt)["status"] == "interrupted" and "factlab: interrupted" in err


def test_interrupted_rerun_keeps_previous_ok_result(toy, monkeypatch):
    first = run_experiment("toy", "cpu", registry=load_registry(toy))
    def ctrl_c(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(runner, "_execute", ctrl_c)
    with pytest.raises(KeyboardInterrupt): run_experiment("toy", "cpu", registry=load_registry(toy), force=True)
    assert read_record(_result())["start"] == first["start"]
    assert sorted(read_record(a)["status"] for a in _attempts()) == ["interrupted", "ok"]


def test_failed_publish_keeps_previous_publication(run_store):
    reg = load_registry(_registry(run_store/"proj", profiles={"cpu": dict(params={"n": 3})}))
    rec = run_experiment("toy", "cpu", registry=reg)
    dest = Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu"
    assert read_record(dest)["start"] == rec["start"]
    (_result().resolve()/"toy.ipynb").unlink()                                   # publishing the notebook will fail mid-way
    with pytest.raises(FileNotFoundError): publish_run(_result(), {**rec, "start": "later"}, keep_notebook=True)
    assert read_record(dest)["start"] == rec["start"] and (dest/"metrics.json").exists()
    assert not list(dest.parent.glob(".publishing/*"))                           # the staging folder is cleared


# ---- 17.3: names and paths ----

def test_id_with_dotdot_refused(toy, run_store):
    exp = load_registry(toy)["toy"]
    for bad in ("../../x", ".."):
        with pytest.raises(FactlabError, match="not a valid name"): plan_run(bad, "cpu", registry={bad: {**exp, "id": bad}})
    with pytest.raises(FactlabError, match="not a valid name"): plan_run("toy", "..", registry={"toy": {**exp, "profiles": {"..": exp["profiles"]["cpu"]}}})
    assert not runs_dir().exists() and not (run_store/"x").exists()


def test_profile_named_dotdot_refused_when_the_registry_loads(toy):
    (toy/"toy.yaml").write_text(yaml.safe_dump(dict(claims=[CLAIM], profiles={"..": dict(params={})})))
    with pytest.raises(FactlabError, match=r"toy.yaml: profile: '\.\.' is not a valid name"): load_experiment(toy/"toy.yaml")


def test_duplicate_experiment_id_names_both_files(toy):
    (toy/"toy.yml").write_text((toy/"toy.yaml").read_text())
    with pytest.raises(FactlabError, match=r"defined twice: .*toy\.yaml and .*toy\.yml"): load_registry(toy)


def test_path_outside_the_store_refused(run_store):
    with pytest.raises(FactlabError, match="outside the run store"): inside_store(runs_dir()/"../../x")
    record = dict(experiment="../escape", profile="cpu", notebook="toy.ipynb")
    with pytest.raises(FactlabError, match="not a valid name"): publish_run(run_store, record)
    assert not (run_store/"escape").exists()


# ---- 17.4: damaged state ----

def test_truncated_record_counts_as_not_done(toy, capsys):
    run_experiment("toy", "cpu", registry=load_registry(toy))
    record = _result()/"record.json"
    record.write_text(record.read_text()[:50])
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and not rec.get("skipped")
    err = capsys.readouterr().err
    assert err.count(f"{_result().name}/record.json is unreadable") == 1 and "counting that run as not done" in err


def test_cli_yaml_error_one_line(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "names=[a, b"]) == 2
    assert "-p names=[a, b: the value is not valid YAML" in _one_line(capsys.readouterr().err)
    (toy/"toy.yaml").write_text("claims: [\nprofiles: {}\n")
    assert main(["--registry", str(toy), "list"]) == 2
    assert "toy.yaml: not valid YAML" in _one_line(capsys.readouterr().err)


def test_cli_unwritable_run_store_one_line(toy, run_store, monkeypatch, capsys):
    (run_store/"not_a_folder").write_text("")
    monkeypatch.setenv("FACTLAB_RUNS", str(run_store/"not_a_folder"))                # root ignores permissions; a file does not
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) == 1
    assert "not_a_folder" in _one_line(capsys.readouterr().err)


def test_cli_debug_shows_the_traceback(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "n=0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("factlab: ")


# ---- 17.6: parameters and claims ----

@pytest.mark.parametrize("override, rule", [("n=0", "'n' = 0 breaks its rule `>= 1`"), ("names=[]", "'names' = [] breaks its rule `non-empty`")])
def test_param_range_checked_before_work(toy, capsys, override, rule):
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "-p", override]) == 2
    assert rule in _one_line(capsys.readouterr().err) and _attempts() == []


def test_unlogged_claim_metric_is_reported_on_an_ok_run(run_store, capsys):
    typo = dict(CLAIM, id="typo", metric="acc_typo")
    rec = run_experiment("toy", "cpu", registry=load_registry(_registry(run_store/"proj", claims=(CLAIM, typo))))
    assert rec["status"] == "ok" and rec["claims"]["typo"]["verdict"] == "not-run"
    assert "'acc_typo'" in rec["unmeasured"] and "warning: no metric logged" in capsys.readouterr().out


# ---- 17.2: inputs ----

def test_changed_input_file_triggers_rerun(toy, run_store, monkeypatch, capsys):
    data = run_store/"toy.csv"; data.write_text("a\nb\nc\n")
    monkeypatch.setenv("TOY_INPUT", str(data))
    first = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert first["inputs"]["data/toy.csv"] == dict(path=str(data.resolve()), sha256=input_fingerprint(data), rows=3)
    assert run_experiment("toy", "cpu", registry=load_registry(toy)).get("skipped")
    data.write_text("a\n")                                                       # truncated
    capsys.readouterr()
    again = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert not again.get("skipped") and again["inputs"]["data/toy.csv"]["rows"] == 1
    assert "changed since the last run: input data/toy.csv" in capsys.readouterr().out


# ---- 16.2 and 16.3: publishing from a clean tree; progress ----

def _git(d, *args): subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=d, check=True, capture_output=True)


def test_publish_from_dirty_tree_refused(run_store):
    proj = run_store/"proj"; reg = _registry(proj, profiles={"cpu": dict(params={"n": 3})})
    (proj/"notes.txt").write_text("v1")
    _git(proj, "init", "-q"); _git(proj, "add", "-A"); _git(proj, "commit", "-qm", "toy")
    (proj/"notes.txt").write_text("v2")                                           # an uncommitted change
    with pytest.raises(FactlabError, match="uncommitted changes.*Commit them first"): run_experiment("toy", "cpu", registry=load_registry(reg))
    assert _attempts() == []                                                      # refused before any work
    rec = run_experiment("toy", "cpu", registry=load_registry(reg), allow_dirty=True)
    assert rec["published_dirty"] and read_record(Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu")["published_dirty"]


def test_progress_line_shows_cell_and_notebook_output(toy, monkeypatch, capsys):
    monkeypatch.setattr(runner, "PROGRESS_EVERY_S", 0)
    run_experiment("toy", "cpu", registry=load_registry(toy))
    err = capsys.readouterr().err
    assert "toy [cpu]: cell 3/4" in err and "step 5/10 of the toy" in err and "left" in err   # budget_s: 60 gives an estimate
