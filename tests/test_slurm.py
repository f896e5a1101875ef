"""The cluster engine's foundations: a real one-node SLURM (tests/slurm_cluster.py) runs commands,
batch jobs and submitit jobs, enforces time limits, and a checkpointable submitit job resumes after a
requeue; submitit's local executor runs the same function without SLURM; the runner runs a profile's shards as
SLURM jobs, fails a shard whose job died without a record instead of waiting, and a shard resumes from its
checkpoints after the time-limit signal. The SLURM tests skip, saying why,
where the cluster cannot start (no root, no `slurm-wlm`/`munge`: `make slurm-deps`)."""
import logging, operator, os, socket, sys, time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")
import cloudpickle
import slurm_cluster as sc
from slurm_cluster import ACTIVE, slurm_cluster, wait_for

logging.getLogger("submitit").setLevel(logging.ERROR)   # no accounting here: every `sacct` poll warns
cloudpickle.register_pickle_by_value(sys.modules[__name__])   # jobs cannot import this test module: ship `Count` by value


class Count(submitit.helpers.Checkpointable):
    "Append the numbers 0..n-1 to `path`, one a `step` seconds, resuming after what is already there."
    def __call__(self, path:Path, n:int, step:float=1.0) -> int:
        done = len(path.read_text().split()) if path.exists() else 0
        with open(path, "a") as f:
            for i in range(done, n):
                f.write(f"{i}\n"); f.flush(); time.sleep(step)
        return len(path.read_text().split())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    "One cluster for the module (it starts in ~3 s, stops in <1 s)."
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as c: yield c


@pytest.fixture
def slurm_env(cluster, monkeypatch):
    "This process's environment pointed at the cluster, as submitit (which calls sbatch itself) needs."
    for k in [k for k in os.environ if k.startswith("SLURM")]: monkeypatch.delenv(k)
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    return cluster


def slurm_executor(folder:Path, **params):
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(slurm_partition="debug", **params)
    return ex


def test_unavailable_says_why(monkeypatch):
    "Where the cluster cannot start, the SLURM tests skip naming the reason and the fix."
    monkeypatch.setattr(sc, "SBIN", "/nowhere")
    assert "make slurm-deps" in sc.unavailable()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in sc.unavailable()


def test_srun_hostname(cluster):
    assert cluster.run("srun", "hostname").stdout.strip() == socket.gethostname().split(".")[0] == cluster.node


def test_sbatch_wait_writes_a_file(cluster, tmp_path):
    out = tmp_path/"hello.txt"
    cluster.run("sbatch", "--wait", "--time=1", "-o", str(tmp_path/"job.log"), "--wrap", f"echo hello from $SLURM_JOB_ID > {out}")
    assert out.read_text().startswith("hello from ")
    assert cluster.job(out.read_text().split()[-1])["JobState"] == "COMPLETED"


def test_submitit_slurm_returns_result(slurm_env, tmp_path):
    job = slurm_executor(tmp_path, timeout_min=1).submit(operator.mul, 6, 7)
    assert job.result() == 42   # the result file is written before the job step ends: wait for SLURM to see it end
    wait_for(lambda: slurm_env.job(job.job_id)["JobState"] not in ACTIVE, 30, "the submitit job to end", slurm_env.logs/"slurmctld.log")
    assert slurm_env.job(job.job_id)["JobState"] == "COMPLETED"


def test_submitit_local_returns_result(tmp_path):
    "submitit's local executor: the same call, no SLURM, no root."
    ex = submitit.AutoExecutor(folder=tmp_path, cluster="local"); ex.update_parameters(timeout_min=1)
    job = ex.submit(operator.mul, 6, 7)
    assert job.result() == 42 and job.state == "FINISHED"


def test_submitit_checkpoint_resumes_after_requeue(slurm_env, tmp_path):
    "The time-limit signal (sent here at once, as submitit's own tests do) checkpoints and requeues; the rerun resumes."
    path = tmp_path/"count.txt"
    job = slurm_executor(tmp_path, timeout_min=5).submit(Count(), path, 8, 0.5)
    while not path.exists() or len(path.read_text().split()) < 3: time.sleep(0.2)
    job._interrupt(timeout=True)   # scancel --signal USR2: what SLURM sends `signal_delay_s` before the limit
    assert job.result() == 8
    assert path.read_text().split() == [str(i) for i in range(8)]   # each number once: resumed, not restarted
    assert slurm_env.job(job.job_id)["Restarts"] == "1"


@pytest.mark.slow
def test_time_limits(slurm_env, tmp_path):
    """A real one-minute limit, two ways at once (60-95 s: SLURM checks limits every 30 s): a batch job that
    overruns ends as TIMEOUT; a checkpointable submitit job gets SLURM's signal, is requeued and finishes."""
    sleeper = slurm_env.run("sbatch", "--parsable", "--time=1", "-o", str(tmp_path/"sleep.log"), "--wrap", "sleep 300").stdout.strip()
    path = tmp_path/"count.txt"
    job = slurm_executor(tmp_path, timeout_min=1, slurm_signal_delay_s=50).submit(Count(), path, 45)
    assert job.result() == 45 and path.read_text().split() == [str(i) for i in range(45)]
    assert int(slurm_env.job(job.job_id)["Restarts"]) >= 1
    wait_for(lambda: slurm_env.job(sleeper)["JobState"] not in ACTIVE, 120, "the sleeper to end", step=1)
    assert slurm_env.job(sleeper)["JobState"] == "TIMEOUT"


# ---- the runner's shards as SLURM jobs ----

SHARD_BODY = """import os, time
from pathlib import Path
from factlab.workbook.results import Results
steps = Path(os.environ['FACTLAB_CHECKPOINTS'], 'steps.txt')    # a training loop's checkpoints: resume after what is there
for i in range(len(steps.read_text().split()) if steps.exists() else 0, n_steps):
    with open(steps, 'a') as f: f.write(f'{i}\\n')
    time.sleep(step_s)
res = Results(out_dir, experiment='toy'); res.info(steps=steps.read_text().split(), job=os.environ.get('SLURM_JOB_ID'))
for s in seeds: res.log('acc', 0.6 + 0.05 * s, ci=[0.55 + 0.05 * s, 0.65 + 0.05 * s], n=100, seed=s)
res.save()
"""
SHARD_PARAMS = 'out_dir: str = "."\nseeds: list = [0]\nn_steps: int = 1\nstep_s: float = 0.0'


@pytest.fixture
def shard_toy(run_store):
    from conftest import toy_registry
    from factlab.workbook.registry import load_registry
    claim = dict(id="above", statement="above chance", metric="acc", paper=dict(value=0.7), rule=dict(kind="greater", than=0.5))
    profiles = dict(seeds=dict(publish=False, params=dict(seeds=[0, 1], n_steps=1), shards=["seeds"]),
                    slow=dict(publish=False, params=dict(seeds=[0], n_steps=16, step_s=0.5), shards=["seeds"]))
    return load_registry(toy_registry(run_store/"proj", SHARD_BODY, SHARD_PARAMS, [claim], profiles))


def test_slurm_executor_runs_a_profile_as_shards(slurm_env, shard_toy):
    from factlab.workbook.runs.batch import run_experiment
    rec = run_experiment("toy", "seeds", registry=shard_toy, executor="slurm", jobs=2, slurm=dict(slurm_partition="debug", timeout_min=5))
    assert rec["status"] == "ok", rec["error"]
    assert [e["name"] for e in rec["shards"]] == ["seeds-0", "seeds-1"] and all(e["status"] == "ok" for e in rec["shards"])
    for e in rec["shards"]: assert slurm_env.job(e["job"]["id"])["JobState"] == "COMPLETED"
    assert rec["metrics"]["acc"]["seeds"] == [0, 1] and rec["executor"] == dict(kind="slurm", jobs=2)


def test_slurm_shard_killed_without_a_record_fails_the_merge_instead_of_hanging(slurm_env, shard_toy):
    "No accounting: submitit cannot see a job that died without a result; the runner's own polling (scontrol) does."
    import signal, threading
    from factlab.workbook.runs.batch import run_experiment
    out = {}
    t = threading.Thread(target=lambda: out.update(rec=run_experiment("toy", "slow", registry=shard_toy, executor="slurm",
                                                                      slurm=dict(slurm_partition="debug", timeout_min=5))))
    t.start()
    wait_for(lambda: slurm_env.run("squeue", "-h", "-t", "R", "-o", "%i", check=False).stdout.split(), 60, "the shard's job to run")
    job = slurm_env.run("squeue", "-h", "-o", "%i").stdout.split()[0]
    wait_for(lambda: sc.leftovers(f"SLURM_JOB_ID={job}"), 30, "the job's processes")
    time.sleep(3)
    for pid in sorted(sc.leftovers(f"SLURM_JOB_ID={job}")):                  # the whole job at once, as the OOM killer or a node crash would
        try: os.kill(pid, signal.SIGKILL)
        except ProcessLookupError: pass
    t.join(120)
    assert not t.is_alive(), "the runner hung on a dead job"
    rec = out["rec"]
    assert rec["status"] == "failed" and rec["shards"][0]["status"] == "failed"
    assert f"slurm job {job} ended" in rec["shards"][0]["error"] and "without writing a record" in rec["shards"][0]["error"]


def test_slurm_shard_resumes_from_its_checkpoints_after_a_time_limit_signal(slurm_env, shard_toy):
    "SLURM's time-limit signal (sent at once, as submitit's tests do): the job checkpoints, requeues, and the shard resumes its steps."
    import threading
    from factlab.workbook.runs.batch import run_experiment
    from factlab.workbook.runs.plan import plan_run
    from factlab.workbook.runs.store import checkpoint_dir
    steps = checkpoint_dir(plan_run("toy", "slow", registry=shard_toy, shard="seeds-0").folder)/"steps.txt"
    out = {}
    t = threading.Thread(target=lambda: out.update(rec=run_experiment("toy", "slow", registry=shard_toy, executor="slurm",
                                                                      slurm=dict(slurm_partition="debug", timeout_min=5))))
    t.start()
    wait_for(lambda: steps.exists() and len(steps.read_text().split()) >= 4, 90, "the shard to take 4 steps")
    job = slurm_env.run("squeue", "-h", "-o", "%i").stdout.split()[0]
    slurm_env.run("scancel", job, "--signal", "USR2")
    t.join(180)
    assert not t.is_alive()
    rec = out["rec"]
    assert rec["status"] == "ok", rec["error"]
    assert int(slurm_env.job(job)["Restarts"]) >= 1
    assert rec["info"]["steps"] == [str(i) for i in range(16)]          # every step once: resumed, not restarted
    assert not steps.parent.exists()                                   # the checkpoint folder goes once the shard is ok
