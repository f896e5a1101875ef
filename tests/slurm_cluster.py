"""A throwaway one-node SLURM cluster for tests: `munged`, `slurmctld` and `slurmd` from Debian's
`slurm-wlm` and `munge`, started with their config, state, spool and logs under a given folder (munged's key, socket and log in a
short /tmp folder of its own) and stopped after, leaving nothing running. Needs root and the packages (`make slurm-deps`); otherwise the
test that asks for it is skipped with the reason.

    with slurm_cluster(tmp_path) as cluster:
        subprocess.run(["srun", "hostname"], env=cluster.env, check=True)
"""
import os, pwd, shutil, signal, socket, subprocess, tempfile, time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "squeue", "scontrol", "scancel", "srun", "sbatch")
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])   # the daemons live in sbin
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")   # job states before the end
MARK = "FACTLAB_TEST_SLURM"   # set in the daemons' environment: how the clean-up recognises what they started


@dataclass
class SlurmCluster:
    "A running one-node cluster: `env` is what a client (srun, sbatch, submitit) needs to reach it."
    env: dict        # os.environ without inherited SLURM_* variables, plus SLURM_CONF
    conf: Path       # its slurm.conf
    node: str        # the node's name (this host's short name)
    partition: str   # the one (default) partition
    logs: Path       # slurmctld.log, slurmd.log (munged.log is removed with its folder on exit)

    def run(self, *args, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
        "Run a SLURM client command against this cluster; text output captured."
        return subprocess.run(args, env=self.env, check=check, timeout=timeout, capture_output=True, text=True, **kw)

    def job(self, job_id) -> dict:
        "A job's fields from `scontrol show job` (JobState, Restarts, ...): no accounting database here, so no sacct."
        out = self.run("scontrol", "show", "job", "-o", str(job_id)).stdout
        return dict(w.split("=", 1) for w in out.split() if "=" in w)


def unavailable() -> str | None:
    "Why a local cluster cannot start here, or None."
    if os.geteuid() != 0: return "a local SLURM cluster needs root (slurmd starts jobs; munged runs as user munge)"
    missing = [b for b in DAEMONS + CLIENTS if not shutil.which(b, path=SBIN)]
    if missing: return f"SLURM/munge not installed ({', '.join(missing)} missing): run `make slurm-deps`"
    try: pwd.getpwnam("munge")
    except KeyError: return "no user `munge`: run `make slurm-deps`"
    return None


def free_port() -> int:
    "A TCP port nobody listens on now."
    with socket.socket() as s:
        s.bind(("", 0)); return s.getsockname()[1]


def node_line() -> str:
    "This host as slurm.conf's NodeName line, from `slurmd -C` (CPUs, sockets, cores, RealMemory)."
    out = subprocess.run([shutil.which("slurmd", path=SBIN), "-C"], capture_output=True, text=True, check=True).stdout
    return next(l for l in out.splitlines() if l.startswith("NodeName="))


def write_conf(conf:Path, munge_socket:Path) -> str:
    "Write `conf` for a one-node cluster on this host, its state, spool and logs beside it; returns the node's name."
    node = node_line(); name = node.split()[0].split("=", 1)[1]; d = conf.parent
    for sub in ("state", "spool", "log"): (d/sub).mkdir(parents=True, exist_ok=True)
    conf.write_text(f"""\
ClusterName=factlab-test
SlurmctldHost={name}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# our own munged; a requeued job may start again after cred_expire+1 s (default 121 s)
AuthInfo=socket={munge_socket},cred_expire=5
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
# jobs share the node, one CPU each by default
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# quick: SIGTERM to SIGKILL in 2 s; pending jobs considered every second (default 60 s)
KillWait=2
SchedulerParameters=sched_interval=1
MailProg=/bin/true
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes={name} Default=YES MaxTime=INFINITE State=UP
""")
    return name


def start_munged(d:Path, env:dict) -> subprocess.Popen:
    "A munged with its own key, socket, pid, seed and log in `d` (owned by munge), run as user munge."
    munge = pwd.getpwnam("munge")
    d.mkdir(); d.chmod(0o711); os.chown(d, munge.pw_uid, munge.pw_gid)   # munged: others may enter, not list
    key = d/"munge.key"; key.write_bytes(os.urandom(128)); key.chmod(0o400); os.chown(key, munge.pw_uid, munge.pw_gid)
    cmd = [shutil.which("munged", path=SBIN), "--foreground", f"--key-file={key}", f"--socket={d}/munge.socket",
           f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"]
    with open(d/"munged.out", "w") as out:   # munged's own complaints before its log is open
        p = subprocess.Popen(cmd, user=munge.pw_uid, group=munge.pw_gid, extra_groups=[], env=env,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: (d/"munge.socket").exists() or p.poll() is not None, 10, "munged to open its socket", d/"munged.out")
    if p.poll() is not None: raise RuntimeError(f"munged exited ({p.returncode}):\n{tail(d/'munged.out')}")
    return p


def client_env(conf:Path) -> dict:
    "os.environ without SLURM_* variables inherited from any outer job, pointed at `conf`."
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM")} | {"SLURM_CONF": str(conf)}


def tail(path:Path, n:int=20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else f"({path} absent)"


def wait_for(ok, timeout:float, what:str, log:Path|None=None, step:float=0.2):
    "Poll `ok()` until true; on timeout raise naming `what` and the log's tail."
    end = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > end: raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{tail(log) if log else ''}")
        time.sleep(step)


def stop(p:subprocess.Popen, timeout:float=15):
    "SIGTERM a daemon we started, SIGKILL if it outlives `timeout`."
    if p.poll() is None:
        p.terminate()
        try: p.wait(timeout)
        except subprocess.TimeoutExpired: p.kill(); p.wait()


def leftovers(*marks:str) -> list[int]:
    "Pids of other processes started with any of `marks` (VAR=value) in their environment."
    pids, marks = [], {m.encode() for m in marks}
    for e in Path("/proc").iterdir():
        if not e.name.isdigit() or int(e.name) == os.getpid(): continue
        try: environ = (e/"environ").read_bytes().split(b"\0")
        except OSError: continue
        if marks.intersection(environ): pids.append(int(e.name))
    return pids


def cancel_all(cluster:SlurmCluster, timeout:float=20):
    "Cancel every job of this (private) cluster and wait until none is left."
    ids = cluster.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
    if not ids: return
    cluster.run("scancel", *ids, check=False)
    wait_for(lambda: not cluster.run("squeue", "-h", "-o", "%i", check=False).stdout.split(), timeout, "jobs to end", cluster.logs/"slurmd.log")


def node_state(cluster:SlurmCluster) -> str:
    return cluster.run("sinfo", "-h", "-N", "-n", cluster.node, "-o", "%T", check=False).stdout.strip()


@contextmanager
def slurm_cluster(base:Path, timeout:float=60):
    "Start munged, slurmctld and slurmd with everything under `base`; yield a `SlurmCluster` once the node is idle; stop all on exit."
    if (why := unavailable()): pytest.skip(why)
    base = Path(base); base.mkdir(parents=True, exist_ok=True)
    # munged's folder: short (a socket path has at most 107 bytes) and reachable by user munge (pytest's
    # tmp_path lies under a root-only folder), so it gets its own /tmp folder, removed on exit
    top = Path(tempfile.mkdtemp(prefix="slurm-")); top.chmod(0o755)
    conf = base/"slurm.conf"; env = client_env(conf) | {MARK: str(top), "PATH": SBIN}   # the daemons' environment
    daemons = []
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, top, ignore_errors=True)
        @cleanup.callback
        def _stop_all():
            for p in reversed(daemons): stop(p)
            for pid in leftovers(f"{MARK}={top}", f"SLURM_CONF={conf}"):   # slurmstepd, job processes
                try: os.kill(pid, signal.SIGKILL)
                except ProcessLookupError: pass
        daemons.append(start_munged(top/"munge", env))
        node = write_conf(conf, top/"munge"/"munge.socket")
        for exe in ("slurmctld", "slurmd"):
            out = cleanup.enter_context(open(base/"log"/f"{exe}.out", "w"))
            daemons.append(subprocess.Popen([shutil.which(exe, path=SBIN), "-D", "-f", str(conf)], env=env, cwd=base,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT))
        cluster = SlurmCluster(client_env(conf), conf, node, "debug", base/"log")
        def up():
            if (dead := [p.args[0] for p in daemons if p.poll() is not None]):
                raise RuntimeError(f"{dead} exited:\n{tail(cluster.logs/'slurmctld.log')}\n{tail(cluster.logs/'slurmd.log')}")
            return node_state(cluster) == "idle"
        wait_for(up, timeout, f"node {node} to be idle (sinfo)", cluster.logs/"slurmd.log", step=0.5)
        # the scheduler's first pass comes a few seconds after start: a first batch job waits for it here
        first = cluster.run("sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true").stdout.strip()
        wait_for(lambda: cluster.job(first)["JobState"] not in ACTIVE, timeout, "a first batch job to end", cluster.logs/"slurmctld.log")
        if (state := cluster.job(first)["JobState"]) != "COMPLETED": raise RuntimeError(f"a first batch job ended {state}:\n{tail(cluster.logs/'slurmd.log')}")
        cleanup.callback(cancel_all, cluster)   # runs first on exit: no job outlives the cluster
        yield cluster
