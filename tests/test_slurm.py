"""The cluster engine's foundations (issue 17): a real one-node SLURM (tests/slurm_cluster.py) runs commands,
batch jobs and submitit jobs, enforces time limits, and a checkpointable submitit job resumes after a
requeue; submitit's local executor runs the same function without SLURM. The SLURM tests skip, saying why,
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
    assert job.result() == 42
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
