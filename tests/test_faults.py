"""Fault injection against the runner, the report, the caches and the loaders: each test is one fault, named for it; each must end clean."""
# One test per kind of fault: each names the fault it injects.
# What already holds (kept, with its tests):
#   parameters checked before any work ........ test_unknown_or_mistyped_parameter_refused_before_any_work, test_param_range_checked_before_work
#   a raising notebook: `failed`, batch goes on  test_raising_notebook_gives_failed_record_and_batch_goes_on
#   SIGKILL never leaves a record read as done . test_sigkill_during_forced_rerun_leaves_no_done_record_and_keeps_previous_result
#   same seed -> identical metrics ............. test_same_seed_gives_identical_metrics
#   no network attempt (offline loads) ......... test_offline_loads_attempt_no_network_connection
#   safetensors only, no remote code ........... test_pickled_model_weights_refused_safetensors_only, test_remote_code_in_model_folder_never_runs
#   yaml.safe_load ............................. test_yaml_python_tag_refused_in_override_and_registry
# 17.1 nothing lost: a killed / failed / interrupted rerun, two runs of one key, a failed publish
#   test_sigkill_during_forced_rerun_..., test_failed_rerun_keeps_previous_ok_result_and_its_own_folder, test_ctrl_c_writes_interrupted_record,
#   test_interrupted_rerun_keeps_previous_ok_result, test_second_run_same_key_refused, test_failed_publish_keeps_previous_publication
# 17.2 "already done" and the caches follow the inputs
#   truncated data file ........ test_truncated_dataset_file_warns_and_is_fingerprinted, test_changed_input_file_triggers_rerun
#   changed weights in a folder  test_changed_model_weights_make_a_done_run_stale, test_changed_model_weights_fib_scores_not_reused,
#                                test_changed_model_weights_activations_not_reused
# 17.3 ids and profiles as paths: test_id_with_dotdot_refused, test_profile_named_dotdot_refused_when_the_registry_loads,
#   test_path_outside_the_store_refused
# 17.4 damaged state
#   truncated record.json ...... test_truncated_record_counts_as_not_done, test_truncated_record_with_force_reruns_cleanly,
#                                test_report_skips_and_lists_truncated_record
#   foreign JSON in reports/ ... test_report_skips_and_lists_foreign_json
#   truncated model/acts/scores  test_truncated_converted_model_moved_aside_and_rebuilt, test_truncated_activation_cache_moved_aside_and_rebuilt,
#                                test_truncated_score_cache_moved_aside_and_rebuilt
#   read-only cache ............ test_read_only_cache_fails_before_the_notebook_runs
#   YAML mistakes, other errors  test_cli_yaml_error_in_override_one_line, test_cli_yaml_error_in_registry_file_one_line,
#                                test_cli_unwritable_run_store_one_line, test_cli_unexpected_error_one_line, test_cli_debug_shows_the_traceback
# 17.5 checkpoints: test_pickled_checkpoint_payload_refused_without_running, test_truncated_checkpoint_refused_naming_it,
#   test_checkpoint_loads_with_weights_only
# 17.6 smaller: test_unlogged_claim_metric_is_reported_on_an_ok_run, test_negative_n_per_file_refused_before_any_work,
#   test_empty_models_refused_before_any_work, test_empty_seeds_refused_before_any_work, test_template_out_of_choices_refused_before_any_work,
#   test_list_element_of_wrong_kind_refused_before_any_work, test_duplicate_experiment_id_names_both_files
# Publishing and progress faults: test_publish_from_dirty_tree_refused, test_progress_line_shows_cell_and_notebook_output
# A result is the result of the inputs it names (the last silent reuses and rough stops):
#   1. reuse follows what this run would read: test_another_data_folder_makes_a_done_run_stale, test_repointed_symlink_makes_a_done_run_stale,
#      test_data_file_unlike_its_pinned_source_warned_on_console_and_in_record, test_factlab_data_naming_a_file_refused_before_any_work
#   2. reports/ agrees with runs/ and git: test_failed_publish_is_published_by_the_next_plain_run,
#      test_profile_name_too_long_to_publish_refused_before_any_work, test_untracked_notebook_and_registry_file_count_as_dirty
#   3. stopping and failing midway: test_sigterm_writes_interrupted_record_and_says_so,
#      test_killed_parent_takes_its_shard_processes_down_with_interrupted_records, test_log_write_error_fails_the_run_in_one_line_naming_the_file,
#      test_judging_error_after_the_notebook_leaves_a_failed_record_naming_it, test_empty_override_value_refused_naming_it,
#      test_garbled_csv_refused_naming_the_file, test_unknown_parameter_under_all_names_the_experiment,
#      test_wrong_typed_rule_value_refused_at_load_naming_file_and_claim, test_duplicate_key_in_registry_file_refused_naming_the_line,
#      test_precondition_on_the_claims_own_metric_refused
import json, os, shutil, signal, socket, subprocess, time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from factlab import activations, core, models
from factlab.core import FactlabError, input_fingerprint
from factlab.core import runs_dir
from factlab.workbook.runs import batch, execute, publish
from factlab.workbook.runs import record as run_record
from factlab.workbook.cli import main
from factlab.workbook.registry import load_experiment, load_registry
from factlab.workbook.runs.batch import run_experiment
from factlab.workbook.runs.plan import plan_run
from factlab.workbook.runs.publish import publish_run
from factlab.workbook.runs.store import inside_store, inputs_changed, read_record

from conftest import BIN, ROOT, data_available, toy_notebook, toy_registry

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
from factlab.workbook.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', 0.5 + n / 10, n=100); res.save()
"""
PARAMS = 'out_dir: str = "."\nn: int = 3  # >= 1; items\nnames: list = ["a"]  # non-empty'
CLAIM = dict(id="above", statement="above chance", metric="acc", paper=dict(value=0.8), rule=dict(kind="greater", than=0.5))


def _registry(d, claims=(CLAIM,), profiles=None, body=BODY, params=PARAMS):
    return toy_registry(d, body, params, claims, profiles or {"cpu": dict(publish=False, budget_s=60, params={"n": 3})})


@pytest.fixture
def toy(run_store):
    return _registry(run_store/"proj")


@pytest.fixture(scope="module")
def _finished_store(tmp_path_factory):
    "A run store holding one finished ok toy cpu run, made once (a notebook run costs seconds) and copied for each test that starts from it."
    d = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACTLAB_RUNS", str(d/"runs")); mp.setenv("FACTLAB_REPORTS", str(d/"reports"))
        return d, run_experiment("toy", "cpu", registry=load_registry(_registry(d/"proj")))


@pytest.fixture
def finished(toy, _finished_store):
    "The toy's finished ok cpu run in this test's run store, its notebook in `toy` (the same bytes: the same run key); returns its record."
    d, record = _finished_store
    shutil.copy(d/"proj/nbs/experiments/toy.ipynb", toy/"toy.ipynb")            # nbformat gives every written cell a new random id
    shutil.copytree(d/"runs", runs_dir(), symlinks=True)
    return record


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty FACTLAB_CACHE of the test's own."
    monkeypatch.setenv("FACTLAB_CACHE", str(tmp_path/"cache"))
    monkeypatch.setattr(activations, "_LAST_MODEL", {})             # no model kept in memory from another test
    return tmp_path/"cache"


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


def _save_model(folder:Path, seed:int, texts=("abc",)) -> Path:
    "A tiny scratch GPT-2 and its character tokenizer saved as a model folder (safetensors)."
    tok = models.char_tokenizer(list(texts))
    models.scratch_model(len(tok), (2, 32, 2), seed=seed).save_pretrained(folder); tok.save_pretrained(folder)
    return folder


class _Payload:
    "Unpickling this creates the file `marker`: the proof that a pickle ran."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, "w"))


# ---- already holds ----

def test_unknown_or_mistyped_parameter_refused_before_any_work(toy, capsys):
    for override, message in (("no_such_param=1", "Unknown parameter 'no_such_param'"), ("n=three", "Parameter 'n' must be int")):
        assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "-p", override]) == 2
        assert message in _one_line(capsys.readouterr().err)
    assert _attempts() == []


def test_raising_notebook_gives_failed_record_and_batch_goes_on(toy, capsys):
    toy_notebook(toy/"bad.ipynb", "raise ValueError('the bad notebook failed on purpose')", 'out_dir: str = "."')
    (toy/"bad.yaml").write_text(yaml.safe_dump(dict(claims=[], profiles={"cpu": dict(publish=False, params={})})))
    assert main(["--registry", str(toy), "run", "bad", "toy", "--profile", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert "failed: bad (see each run's record.json" in _one_line(err)
    assert "job: run 1/2 · 0:00 elapsed" in out and "job: run 2/2 · " in out and "job: 2 runs in " in out   # the whole job's progress
    (bad,) = [p for p in runs_dir().glob("bad/cpu/*") if p.is_symlink()]
    assert read_record(bad)["status"] == "failed" and "failed on purpose" in read_record(bad)["error"]["message"]
    assert read_record(_result())["status"] == "ok"                              # the batch went on after the failure


RANDOM_BODY = """import numpy as np
from factlab.core import seed_everything
seed_everything(seed)
from factlab.workbook.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', float(np.random.rand(50).mean()), n=50); res.save()
"""


def test_same_seed_gives_identical_metrics(run_store):
    reg = load_registry(_registry(run_store/"proj", body=RANDOM_BODY, params='out_dir: str = "."\nseed: int = 0',
                                  profiles={"cpu": dict(publish=False, params={"seed": 0})}))
    first = run_experiment("toy", "cpu", registry=reg)
    again = run_experiment("toy", "cpu", registry=reg, force=True)
    assert first["status"] == again["status"] == "ok" and again["start"] != first["start"]
    assert again["metrics"] == first["metrics"] and again["seeds"] == [0]


def test_offline_loads_attempt_no_network_connection(tmp_path, monkeypatch):
    attempts = []
    def refuse(*args, **kw): attempts.append(args); raise OSError("network disabled by the test")
    for target, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"), (socket, "getaddrinfo")):
        monkeypatch.setattr(target, name, refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False); monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    models.load_model(str(_save_model(tmp_path/"m", seed=0)), device="cpu")
    if sorted((core.cache_dir()/"models").glob("smollm2-135m-instruct-*")):         # converted before: a smoke run's model, no 17 s conversion
        models.load_model("smollm2-135m-instruct", device="cpu")
    if data_available():
        from factlab import data
        data.load("cities")
    assert attempts == []


def test_pickled_model_weights_refused_safetensors_only(tmp_path):
    folder = _save_model(tmp_path/"m", seed=0)
    (folder/"model.safetensors").unlink()
    torch.save({"payload": _Payload(tmp_path/"ran")}, folder/"pytorch_model.bin")
    with pytest.raises(OSError, match=f"model.safetensors.*{folder}"): models.load_model(str(folder), device="cpu")
    assert not (tmp_path/"ran").exists()


def test_remote_code_in_model_folder_never_runs(tmp_path):
    folder = _save_model(tmp_path/"m", seed=0)
    config = json.loads((folder/"config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder/"config.json").write_text(json.dumps(config))
    (folder/"evil.py").write_text(f"open({str(tmp_path/'ran')!r}, 'w')\nfrom transformers import GPT2Config as EvilConfig, GPT2LMHeadModel as EvilModel\n")
    model, _ = models.load_model(str(folder), device="cpu")
    assert type(model).__name__ == "GPT2LMHeadModel" and not (tmp_path/"ran").exists()


def test_yaml_python_tag_refused_in_override_and_registry(toy, tmp_path, capsys):
    tag = f'!!python/object/apply:builtins.open ["{tmp_path/"ran"}", "w"]'
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "-p", f"n={tag}"]) == 2
    assert "the value is not valid YAML" in _one_line(capsys.readouterr().err)
    (toy/"toy.yaml").write_text(f"claims: {tag}\nprofiles: {{}}\n")
    assert main(["--registry", str(toy), "list"]) == 2
    assert "toy.yaml: not valid YAML" in _one_line(capsys.readouterr().err)
    assert not (tmp_path/"ran").exists() and _attempts() == []


# ---- 17.1: nothing lost ----

def test_sigkill_during_forced_rerun_leaves_no_done_record_and_keeps_previous_result(toy, finished):
    first = finished
    proc = _start_cli(toy, "--force")
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    kept = read_record(_result())
    assert kept["status"] == "ok" and kept["start"] == first["start"]         # the finished result is untouched
    (killed,) = [a for a in _attempts() if a != _result().resolve()]
    assert read_record(killed, warn=False) is None                             # the killed attempt never reads as done
    assert run_experiment("toy", "cpu", registry=load_registry(toy)).get("skipped")


def test_failed_rerun_keeps_previous_ok_result_and_its_own_folder(toy, finished, monkeypatch):
    first = finished
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
    # usually seconds; on a loaded 2-core machine the interrupt has been seen to wait for the running cell (TOY_SLEEP 60 s)
    _, err = proc.communicate(timeout=150)
    assert proc.returncode == 130, err
    (attempt,) = _attempts()
    assert read_record(attempt)["status"] == "interrupted" and "factlab: interrupted" in err


def test_interrupted_rerun_keeps_previous_ok_result(toy, finished, monkeypatch):
    first = finished
    def ctrl_c(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(execute, "_execute", ctrl_c)
    with pytest.raises(KeyboardInterrupt): run_experiment("toy", "cpu", registry=load_registry(toy), force=True)
    assert read_record(_result())["start"] == first["start"]
    assert sorted(read_record(a)["status"] for a in _attempts()) == ["interrupted", "ok"]


def test_failed_publish_keeps_previous_publication(run_store, monkeypatch):
    reg = load_registry(_registry(run_store/"proj", profiles={"cpu": dict(params={"n": 3})}))
    rec = run_experiment("toy", "cpu", registry=reg)
    dest = Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu"
    assert read_record(dest)["start"] == rec["start"]
    def disk_full(*a, **k): raise OSError(28, "No space left on device")
    monkeypatch.setattr(publish, "publish_notebook", disk_full)                   # publishing fails after the record is staged
    with pytest.raises(OSError, match="No space left"): publish_run(_result(), {**rec, "start": "later"}, keep_notebook=True)
    assert read_record(dest)["start"] == rec["start"] and (dest/"metrics.json").exists()
    assert not list(dest.parent.glob(".publishing/*"))                           # the staging folder is cleared


# ---- 17.2: inputs and caches follow the content ----

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


@pytest.mark.skipif(not data_available(), reason="needs FACTLAB_DATA")
def test_truncated_dataset_file_warns_and_is_fingerprinted(tmp_path, monkeypatch):
    from factlab import data
    lines = (Path(os.environ["FACTLAB_DATA"])/"truth_probes/cities.csv").read_text().splitlines(keepends=True)
    (tmp_path/"truth_probes").mkdir(); (tmp_path/"truth_probes/cities.csv").write_text("".join(lines[:48]))   # 47 of 1,496 rows
    monkeypatch.setenv("FACTLAB_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="differs from truth_probes/cities.csv at its pinned source"): ds = data.load("cities")
    entry = core.inputs_used()["data/truth_probes/cities.csv"]
    assert len(ds) == entry["rows"] == 47 and entry["sha256"] == core.file_sha256(tmp_path/"truth_probes/cities.csv")


def test_changed_model_weights_make_a_done_run_stale(cache, tmp_path):
    folder = _save_model(tmp_path/"m", seed=0)
    models.load_model(str(folder), device="cpu")
    done = {"model/m": core.inputs_used()[f"model/{folder}"]}                    # what the run's record keeps
    assert inputs_changed(done) == []
    _save_model(folder, seed=1)                                                  # new weights, same folder, same name
    assert inputs_changed(done) == ["model/m"]


ITEMS = pd.DataFrame(dict(input=["Rain fell on Paris all day."], consistent=[" It rained in Paris."],
                          inconsistent=[" It was sunny in Paris."], dataset=["xsum"]))
FIB_TEXTS = [*ITEMS.input, *ITEMS.consistent, *ITEMS.inconsistent, "".join(map(chr, range(32, 127)))]


def _fib_scores(folder):
    from factlab.recipes.fib import score_fib
    model, tok = models.load_model(str(folder), device="cpu")
    return score_fib(model, tok, ITEMS, templates=(0,), model_key="my-model", progress=False)


def test_changed_model_weights_fib_scores_not_reused(cache, tmp_path):
    folder = _save_model(tmp_path/"my-model", seed=0, texts=FIB_TEXTS)
    first = _fib_scores(folder)
    _save_model(folder, seed=1, texts=FIB_TEXTS)
    second = _fib_scores(folder)
    assert abs(first.cons_sum[0] - second.cons_sum[0]) > 1e-3                     # scored again, not read from the first weights' cache
    assert len(list((cache/"fib").glob("my-model-*.json"))) == 2


def test_changed_model_weights_activations_not_reused(cache, tmp_path):
    texts = ["The sky is blue.", "Paris is in Spain."]
    folder = _save_model(tmp_path/"m", seed=0, texts=texts)
    a = activations.cached_activations(str(folder), "toy", texts)
    _save_model(folder, seed=1, texts=texts); activations._LAST_MODEL.clear()
    b = activations.cached_activations(str(folder), "toy", texts)
    assert not torch.allclose(a, b) and len(list((cache/"activations").rglob("*.pt"))) == 2


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

def test_truncated_record_counts_as_not_done(toy, finished, capsys):
    record = _result()/"record.json"
    record.write_text(record.read_text()[:50])
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "ok" and not rec.get("skipped")
    err = capsys.readouterr().err
    assert err.count(f"{_result().name}/record.json is unreadable") == 1 and "counting that run as not done" in err


def test_truncated_record_with_force_reruns_cleanly(toy, finished, capsys):
    record = _result()/"record.json"
    record.write_text(record.read_text()[:50])
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "--force"]) == 0
    assert "Traceback" not in capsys.readouterr().err and read_record(_result())["status"] == "ok"


def _published(reports:Path, rel:str, text:str):
    (reports/rel).parent.mkdir(parents=True, exist_ok=True); (reports/rel).write_text(text)


GOOD_RECORD = dict(experiment="toy", profile="cpu", status="ok", notebook="toy.ipynb", metrics={"acc": dict(value=0.8, ci=[0.7, 0.9], n=100)})


def test_report_skips_and_lists_truncated_record(toy, capsys):
    reports = Path(os.environ["FACTLAB_REPORTS"])
    _published(reports, "toy/cpu/record.json", json.dumps(GOOD_RECORD))
    _published(reports, "toy/smoke/record.json", json.dumps(GOOD_RECORD)[:40])
    assert main(["--registry", str(toy), "report"]) == 0
    readme = (reports/"README.md").read_text()
    assert "## Skipped records" in readme and "`toy/smoke/record.json`: JSONDecodeError" in readme
    assert "0.800 [0.700, 0.900] (n=100)" in readme and "Traceback" not in capsys.readouterr().err   # the good run is still reported


def test_report_skips_and_lists_foreign_json(toy, capsys):
    reports = Path(os.environ["FACTLAB_REPORTS"])
    _published(reports, "toy/cpu/record.json", json.dumps(GOOD_RECORD))
    _published(reports, "notes/misc/record.json", json.dumps({"title": "my notes"}))
    _published(reports, "notes.json", json.dumps([1, 2, 3]))
    assert main(["--registry", str(toy), "report"]) == 0
    readme = (reports/"README.md").read_text()
    assert "`notes/misc/record.json`: ValueError: not a factlab run record" in readme and "notes.json" not in readme
    assert "0.800 [0.700, 0.900] (n=100)" in readme and "Traceback" not in capsys.readouterr().err


def test_truncated_converted_model_moved_aside_and_rebuilt(cache, tmp_path, monkeypatch):
    def convert(gguf, label):   # stands in for the 17 s GGUF dequantisation: same cache folder, same "done" test
        out = core.cache_dir()/"models"/f"{label}-{input_fingerprint(gguf)[:16]}"
        return out if (out/"config.json").exists() else _save_model(out, seed=0)
    monkeypatch.setattr(models, "_gguf_to_cache", convert)
    gguf = tmp_path/"tiny.gguf"; gguf.write_bytes(b"GGUF a tiny model")
    first = [p.detach().clone() for p in models.load_model(str(gguf), device="cpu")[0].parameters()]
    (converted,) = (cache/"models").iterdir()
    cut = converted/"cut"; cut.write_bytes((converted/"model.safetensors").read_bytes()[:100])
    os.replace(cut, converted/"model.safetensors")                              # a new file: the loaded model's memory map stays valid
    with pytest.warns(UserWarning, match=f"cache entry {converted} could not be read.*moved it to {converted.name}.unreadable-"):
        again, _ = models.load_model(str(gguf), device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(first, again.parameters()))
    assert len(list((cache/"models").glob("*.unreadable-*"))) == 1


def test_truncated_activation_cache_moved_aside_and_rebuilt(cache, tmp_path):
    texts = ["The sky is blue.", "Paris is in Spain."]
    folder = _save_model(tmp_path/"m", seed=0, texts=texts)
    first = activations.cached_activations(str(folder), "toy", texts)
    (entry,) = (cache/"activations").rglob("*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match=f"cache entry {entry} could not be read"):
        again = activations.cached_activations(str(folder), "toy", texts)
    assert torch.equal(first, again) and torch.equal(torch.load(entry, weights_only=True), first)   # rebuilt in place


def test_truncated_score_cache_moved_aside_and_rebuilt(cache, tmp_path):
    folder = _save_model(tmp_path/"my-model", seed=0, texts=FIB_TEXTS)
    first = _fib_scores(folder)
    (entry,) = (cache/"fib").glob("my-model-*.json")
    entry.write_text(entry.read_text()[:30])
    with pytest.warns(UserWarning, match=f"cache entry {entry} could not be read"):
        again = _fib_scores(folder)
    pd.testing.assert_frame_equal(first, again)
    assert json.loads(entry.read_text()) and len(list((cache/"fib").glob("*.unreadable-*"))) == 1


def test_read_only_cache_fails_before_the_notebook_runs(toy, run_store, monkeypatch, capsys):
    ro = run_store/"ro-cache"; ro.mkdir(); ro.chmod(0o555)
    if os.access(ro, os.W_OK): ro.rmdir(); ro.write_text("")                     # root ignores permissions; a file cannot hold a folder
    monkeypatch.setenv("FACTLAB_CACHE", str(ro))
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) in (1, 2)
    assert f"cache folder {ro}" in _one_line(capsys.readouterr().err)
    assert not any((a/"started").exists() for a in _attempts()) and _result() is None


def test_cli_yaml_error_in_override_one_line(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "names=[a, b"]) == 2
    assert "-p names=[a, b: the value is not valid YAML" in _one_line(capsys.readouterr().err)


def test_cli_yaml_error_in_registry_file_one_line(toy, capsys):
    (toy/"toy.yaml").write_text("claims: [\nprofiles: {}\n")
    assert main(["--registry", str(toy), "list"]) == 2
    assert f"{toy/'toy.yaml'}: not valid YAML" in _one_line(capsys.readouterr().err)


def test_cli_unwritable_run_store_one_line(toy, run_store, monkeypatch, capsys):
    (run_store/"not_a_folder").write_text("")
    monkeypatch.setenv("FACTLAB_RUNS", str(run_store/"not_a_folder"))                # root ignores permissions; a file does not
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) == 1
    assert "not_a_folder" in _one_line(capsys.readouterr().err)


def test_cli_unexpected_error_one_line(toy, monkeypatch, capsys):
    def bug(*a, **k): raise RuntimeError("a bug in factlab")
    monkeypatch.setattr(batch, "run_many", bug)
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) == 1
    assert "unexpected RuntimeError: a bug in factlab (run again with --debug for the traceback)" in _one_line(capsys.readouterr().err)


def test_cli_debug_shows_the_traceback(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "-p", "n=0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("factlab: ")


# ---- 17.5: checkpoints ----

def test_pickled_checkpoint_payload_refused_without_running(tmp_path):
    from factlab.train import CKPT_NAME, load_checkpoint
    torch.save({"meta": "{}", "weights": torch.zeros(2), "payload": _Payload(tmp_path/"ran")}, tmp_path/CKPT_NAME)
    with pytest.raises(FactlabError, match=f"The checkpoint {tmp_path/CKPT_NAME} cannot be read"): load_checkpoint(tmp_path)
    assert not (tmp_path/"ran").exists()


def test_truncated_checkpoint_refused_naming_it(tmp_path):
    from factlab.train import CKPT_NAME, load_checkpoint, save_checkpoint
    save_checkpoint(tmp_path, dict(weights={"w": torch.ones(64)}), dict(step=3))
    (tmp_path/CKPT_NAME).write_bytes((tmp_path/CKPT_NAME).read_bytes()[:200])
    with pytest.raises(FactlabError, match=f"The checkpoint {tmp_path/CKPT_NAME} cannot be read.*delete it"): load_checkpoint(tmp_path)


def test_checkpoint_loads_with_weights_only(tmp_path):
    from factlab.train import CKPT_NAME, load_checkpoint, save_checkpoint
    save_checkpoint(tmp_path, dict(weights={"w": torch.ones(3)}, generators=[torch.Generator().get_state()]), dict(step=3, losses=[1.5]))
    raw = torch.load(tmp_path/CKPT_NAME, weights_only=True)                    # no pickled objects beyond tensors and containers
    assert torch.equal(raw["weights"]["w"], torch.ones(3))
    assert load_checkpoint(tmp_path)["meta"] == dict(step=3, losses=[1.5])


# ---- 17.6: parameters and claims ----

@pytest.mark.parametrize("override, rule", [("n=0", "'n' = 0 breaks its rule `>= 1`"), ("names=[]", "'names' = [] breaks its rule `non-empty`")])
def test_param_range_checked_before_work(toy, capsys, override, rule):
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "-p", override]) == 2
    assert rule in _one_line(capsys.readouterr().err) and _attempts() == []


def _refused_before_work(experiment, override, capsys) -> str:
    "Run a real experiment's smoke profile with `override` through the CLI; it must exit 2 before any work; returns the error line."
    assert main(["--registry", str(ROOT/f"nbs/experiments/{experiment}.yaml"), "run", experiment, "--profile", "smoke", "-p", override]) == 2
    assert not runs_dir().exists()
    return _one_line(capsys.readouterr().err)


def test_negative_n_per_file_refused_before_any_work(run_store, capsys):
    assert "'n_per_file' = -1 breaks its rule `>= 0`" in _refused_before_work("fib", "n_per_file=-1", capsys)


def test_empty_models_refused_before_any_work(run_store, capsys):
    assert "'models' = [] breaks its rule `non-empty`" in _refused_before_work("truth_directions", "models=[]", capsys)


def test_empty_seeds_refused_before_any_work(run_store, capsys):
    assert "'seeds' = [] breaks its rule `non-empty`" in _refused_before_work("people_world", "seeds=[]", capsys)


def test_template_out_of_choices_refused_before_any_work(run_store, capsys):
    assert "'templates' = [7] breaks its rule `each in (0, 1, 2)`" in _refused_before_work("fib", "templates=[7]", capsys)


def test_list_element_of_wrong_kind_refused_before_any_work(run_store):
    reg = load_registry(ROOT/"nbs/experiments/truth_directions.yaml")
    with pytest.raises(FactlabError, match="'models': element 0 is int"): plan_run("truth_directions", "smoke", {"models": [7]}, reg)   # planning only: it would run otherwise
    with pytest.raises(FactlabError, match="'seeds': element 0 is str"): plan_run("truth_directions", "smoke", {"seeds": ["a"]}, reg)


def test_unlogged_claim_metric_is_reported_on_an_ok_run(run_store, capsys):
    typo = dict(CLAIM, id="typo", metric="acc_typo")
    rec = run_experiment("toy", "cpu", registry=load_registry(_registry(run_store/"proj", claims=(CLAIM, typo))))
    assert rec["status"] == "ok" and rec["claims"]["typo"]["verdict"] == "not-run"
    assert "'acc_typo'" in rec["unmeasured"] and "warning: no metric logged" in capsys.readouterr().out


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
    monkeypatch.setattr(execute, "PROGRESS_EVERY_S", 0)
    run_experiment("toy", "cpu", registry=load_registry(toy))
    err = capsys.readouterr().err
    assert "toy [cpu]: cell 3/4" in err and "step 5/10 of the toy" in err and "left" in err   # budget_s: 60 gives an estimate


# ---- a result is the result of the inputs it names: reuse, publishing, stopping ----
# 1. "already done" compares what this run would read; a data file unlike its pinned source is said where it is seen

def test_another_data_folder_makes_a_done_run_stale(toy, run_store, monkeypatch, capsys):
    for sub, text in (("a", "a\nb\nc\n"), ("b", "a\n")):
        (run_store/sub).mkdir(); (run_store/sub/"toy.csv").write_text(text)
    monkeypatch.setenv("FACTLAB_DATA", str(run_store/"a")); monkeypatch.setenv("TOY_INPUT", str(run_store/"a/toy.csv"))
    first = run_experiment("toy", "cpu", registry=load_registry(toy))
    monkeypatch.setenv("FACTLAB_DATA", str(run_store/"b"))                                # the same name, another folder
    capsys.readouterr()
    again = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert not again.get("skipped") and "changed since the last run: input data/toy.csv" in capsys.readouterr().out
    assert first["inputs"]["data/toy.csv"]["data_root"] == str(run_store/"a")             # the record says which root the data came from


def test_repointed_symlink_makes_a_done_run_stale(toy, run_store, monkeypatch, capsys):
    (run_store/"full.csv").write_text("a\nb\nc\n"); (run_store/"short.csv").write_text("a\n")
    link = run_store/"toy.csv"; link.symlink_to(run_store/"full.csv")
    monkeypatch.setenv("TOY_INPUT", str(link))
    run_experiment("toy", "cpu", registry=load_registry(toy))
    link.unlink(); link.symlink_to(run_store/"short.csv")                                 # the old target is still there, unchanged
    capsys.readouterr()
    again = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert not again.get("skipped") and again["inputs"]["data/toy.csv"]["rows"] == 1
    assert "changed since the last run: input data/toy.csv" in capsys.readouterr().out


PINNED_BODY = """import warnings
warnings.simplefilter('ignore')                  # a notebook that silences warnings
from factlab import data
from factlab.workbook.results import Results
res = Results(out_dir, experiment='toy'); res.log('acc', 0.5 + len(data.load('cities')) / 10, n=100); res.save()
"""


def test_data_file_unlike_its_pinned_source_warned_on_console_and_in_record(run_store, cache, monkeypatch, capsys):
    (run_store/"data/truth_probes").mkdir(parents=True)
    (run_store/"data/truth_probes/cities.csv").write_text("statement,label\nParis is in France.,1\nParis is in Peru.,0\n")
    monkeypatch.setenv("FACTLAB_DATA", str(run_store/"data")); monkeypatch.setenv("FACTLAB_OFFLINE", "1")
    rec = run_experiment("toy", "cpu", registry=load_registry(_registry(run_store/"proj", body=PINNED_BODY)))
    assert rec["status"] == "ok" and any("truth_probes/cities.csv" in w and "pinned" in w for w in rec["warnings"])
    assert "warning: input data/truth_probes/cities.csv" in capsys.readouterr().out


def test_factlab_data_naming_a_file_refused_before_any_work(toy, run_store, monkeypatch, capsys):
    (run_store/"data.csv").write_text("a\n")
    monkeypatch.setenv("FACTLAB_DATA", str(run_store/"data.csv"))
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu"]) == 2
    assert f"FACTLAB_DATA={run_store/'data.csv'} is not a directory" in _one_line(capsys.readouterr().err) and _attempts() == []


# 2. reports/ agrees with runs/ and with git

def test_failed_publish_is_published_by_the_next_plain_run(run_store, monkeypatch, capsys):
    reg = load_registry(_registry(run_store/"proj", profiles={"cpu": dict(params={"n": 3})}))
    real = publish.publish_run
    def disk_full(*a, **k): raise OSError(28, "No space left on device")
    monkeypatch.setattr(publish, "publish_run", disk_full)
    with pytest.raises(FactlabError, match="succeeded .* but publishing it .* failed .*No space left.*without recomputing"):
        run_experiment("toy", "cpu", registry=reg)
    first = read_record(_result()); assert first["status"] == "ok"
    monkeypatch.setattr(publish, "publish_run", real)
    again = run_experiment("toy", "cpu", registry=reg)
    assert again.get("skipped") and again["start"] == first["start"]                    # not recomputed ...
    assert read_record(Path(os.environ["FACTLAB_REPORTS"])/"toy/cpu")["start"] == first["start"]   # ... but published


def test_profile_name_too_long_to_publish_refused_before_any_work(run_store):
    long = "p" * 250
    reg = load_registry(_registry(run_store/"proj", profiles={long: dict(params={"n": 3})}))
    with pytest.raises(FactlabError, match="profile p+… \\(250 characters\\) is too long"): run_experiment("toy", long, registry=reg)
    assert not runs_dir().exists()


def test_untracked_notebook_and_registry_file_count_as_dirty(run_store):
    proj = run_store/"proj"; reg = _registry(proj, profiles={"cpu": dict(params={"n": 3})})
    (proj/"notes.txt").write_text("v1")
    _git(proj, "init", "-q"); _git(proj, "add", "notes.txt"); _git(proj, "commit", "-qm", "only the notes")   # nbs/ never committed
    with pytest.raises(FactlabError, match="uncommitted changes or untracked files"): run_experiment("toy", "cpu", registry=load_registry(reg))
    assert _attempts() == []


# 3. stopping and failing midway: a record, one line naming the culprit, no orphans

def test_sigterm_writes_interrupted_record_and_says_so(toy):
    proc = _start_cli(toy)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "factlab: stopped by SIGTERM" in err, err
    (attempt,) = _attempts()
    rec = read_record(attempt)
    assert rec["status"] == "interrupted" and rec["error"]["message"] == "Stopped by SIGTERM."


def _children(pid:int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try: fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError: continue
        if int(fields[1]) == pid: out.append(int(stat.parent.name))
    return out


def _alive(pid:int) -> bool:
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError: return False


def test_killed_parent_takes_its_shard_processes_down_with_interrupted_records(run_store):
    toy = _registry(run_store/"proj", profiles={"cpu": dict(publish=False, params={"n": 3, "names": ["a", "b"]}, shards=["names"])})
    proc = subprocess.Popen([str(BIN/"factlab"), "--registry", str(toy), "run", "toy", "--profile", "cpu", "--jobs", "2"],
                            env={**os.environ, "TOY_SLEEP": "120"}, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = lambda: [a for a in runs_dir().glob("toy/cpu/shards/*.attempt-*") if (a/"started").exists()] if runs_dir().exists() else []
    deadline = time.time() + 120
    while time.time() < deadline and len(started()) < 2: time.sleep(0.5)
    shards = _children(proc.pid)
    assert len(started()) == 2 and len(shards) == 2, "the two shards never started"
    os.kill(proc.pid, signal.SIGKILL); proc.wait()                                       # the parent only, not its group
    deadline = time.time() + 60
    while time.time() < deadline and any(map(_alive, shards)): time.sleep(0.5)
    assert not any(map(_alive, shards)), "shard processes outlived their parent"
    assert sorted(read_record(a)["status"] for a in started()) == ["interrupted", "interrupted"]
    assert sorted(p.name for p in runs_dir().glob("toy/cpu/shards/*.log")) == sorted(f"{a.name.split('.attempt-')[0]}.log" for a in started())


def test_log_write_error_fails_the_run_in_one_line_naming_the_file(toy, monkeypatch, capsys):
    real = execute._execute
    monkeypatch.setattr(execute, "_execute", lambda *a, **k: real(*a[:5], Path("/dev/full"), *a[6:], **k))   # a full disk under log.txt
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "failed" and "Cannot write /dev/full: No space left on device" in rec["error"]["message"]
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err


def test_judging_error_after_the_notebook_leaves_a_failed_record_naming_it(toy, monkeypatch):
    def bad_rule(*a, **k): raise TypeError("'>' not supported between instances of 'float' and 'str'")
    monkeypatch.setattr(run_record, "judge_claims", bad_rule)                                # a claim whose rule value has the wrong type
    rec = run_experiment("toy", "cpu", registry=load_registry(toy))
    assert rec["status"] == "failed" and read_record(_result())["status"] == "failed"
    assert "Judging the logged metrics against the claims of" in rec["error"]["message"] and "TypeError: '>' not supported" in rec["error"]["message"]
    assert rec["metrics"]["acc"]["value"] == pytest.approx(0.8)                          # what the notebook measured is kept


def test_empty_override_value_refused_naming_it(toy, capsys):
    assert main(["--registry", str(toy), "run", "toy", "--profile", "cpu", "-p", "names="]) == 2
    assert "-p names=: no value after '='" in _one_line(capsys.readouterr().err) and _attempts() == []


def test_garbled_csv_refused_naming_the_file(tmp_path, cache, monkeypatch):
    from factlab import data
    (tmp_path/"truth_probes").mkdir(); garbled = tmp_path/"truth_probes/cities.csv"
    garbled.write_text('statement,label\n"Paris is in France.,1\nRome,1,2,3\n')         # an unclosed quote
    monkeypatch.setenv("FACTLAB_DATA", str(tmp_path)); monkeypatch.setenv("FACTLAB_OFFLINE", "1")
    with pytest.warns(UserWarning), pytest.raises(FactlabError, match=f"Dataset 'cities': {garbled} cannot be read"): data.load("cities")


def test_unknown_parameter_under_all_names_the_experiment(toy, capsys):
    toy_notebook(toy/"other.ipynb", "pass", 'out_dir: str = "."')
    (toy/"other.yaml").write_text(yaml.safe_dump(dict(claims=[], profiles={"cpu": dict(publish=False, params={})})))
    assert main(["--registry", str(toy), "run", "--all", "--profile", "cpu", "-p", "n=2"]) == 2
    assert "other [cpu]: Unknown parameter 'n'" in _one_line(capsys.readouterr().err)
    assert not runs_dir().exists()                                                       # nothing ran, not even toy


def _toy_yaml_with(toy, old, new):
    "The toy registry file with one edit; returns its path."
    f = toy/"toy.yaml"; text = f.read_text()
    assert old in text, old
    f.write_text(text.replace(old, new, 1)); return f


def test_wrong_typed_rule_value_refused_at_load_naming_file_and_claim(toy, capsys):
    "A `than: '0.5'` used to load, run the notebook to the end and then die without a record; now `list`, `run` and `report` refuse it at once."
    claim = load_experiment(toy/"toy.yaml")["claims"][0]
    key, value = next((k, v) for k, v in claim["rule"].items() if k != "kind")
    f = _toy_yaml_with(toy, f"{key}: {value}", f"{key}: '{value}'")
    for args in (["list"], ["run", "toy", "--profile", "cpu"], ["report"]):
        assert main(["--registry", str(toy), *args]) == 2
        err = _one_line(capsys.readouterr().err)
        assert f.name in err and repr(claim["id"]) in err and f"`{key}` must be a number" in err, err
    assert not list(runs_dir().glob("toy/*/*/record.json"))          # nothing ran


def test_duplicate_key_in_registry_file_refused_naming_the_line(toy, capsys):
    f = toy/"toy.yaml"
    f.write_text(f.read_text() + "profiles: {}\n")                   # a second `profiles:` used to replace the first silently
    assert main(["--registry", str(toy), "list"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(f) in err and "key 'profiles' is given twice" in err, err


def test_precondition_on_the_claims_own_metric_refused(toy, capsys):
    "A precondition cannot hide a result: one on the claim's own metric is refused."
    claim = load_experiment(toy/"toy.yaml")["claims"][0]
    text = (toy/"toy.yaml").read_text()
    d = yaml.safe_load(text); d["claims"][0]["requires"] = [dict(metric=claim["metric"], rule=dict(kind="greater", than=0.0), why="w")]
    (toy/"toy.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    assert main(["--registry", str(toy), "list"]) == 2
    assert "cannot be on the claim's own metric" in _one_line(capsys.readouterr().err)
