"""A run killed while it trains resumes from its last checkpoint: SIGKILL on a smoke run of
compression_consistency that trains one model, a rerun that continues it, and an uninterrupted run that ends
with the same numbers."""
import json, os, signal, subprocess, time
from pathlib import Path

import pandas as pd
import pytest
import torch

from factlab.core import runs_dir
from factlab.workbook.registry import load_registry
from factlab.workbook.runs.batch import run_experiment
from factlab.workbook.runs.store import read_record

from conftest import BIN

# one condition, one micro model, long enough to be killed mid-way; checkpoints every half second
PARAMS = dict(steps=400, conditions=["random:0.5"], scaling_sizes=[], multirule_n=[], world_modes=[], control_orders=[],
              n_problems=300, n_pairs=60, log_every=25)
KILL_AFTER_STEP = 60


def _cli_args():
    return [f"{k}={json.dumps(v)}" for k, v in PARAMS.items()]


def _checkpoints():
    return list(runs_dir().glob("compression_consistency/smoke/*.checkpoints/*/ckpt.pt"))


def _step(ckpt:Path) -> int:
    try: return json.loads(torch.load(ckpt, weights_only=True)["meta"])["step"]
    except Exception: return 0   # being replaced right now


def _result_dir(record:dict) -> Path:
    return runs_dir()/"compression_consistency/smoke"/record["run_key"]


def test_sigkill_while_training_then_rerun_resumes_with_the_same_numbers(run_store, monkeypatch):
    monkeypatch.setenv("FACTLAB_CKPT_EVERY_S", "0.5")
    args = [str(BIN/"factlab"), "run", "compression_consistency", "--profile", "smoke", "--no-publish"]
    for a in _cli_args(): args += ["-p", a]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(_step(c) >= KILL_AFTER_STEP for c in _checkpoints()): time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed: train longer"
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    killed_at = max(_step(c) for c in _checkpoints())
    assert KILL_AFTER_STEP <= killed_at < PARAMS["steps"]

    registry = load_registry()
    resumed = run_experiment("compression_consistency", "smoke", dict(PARAMS), registry=registry, publish=False, cell_timeout=600)
    assert resumed["status"] == "ok", resumed["error"]
    resumed_line = [l for l in (_result_dir(resumed)/"log.txt").read_text().splitlines() if "fit: resumed at step" in l]
    assert resumed_line and int(resumed_line[0].split("resumed at step ")[1].split()[0]) >= KILL_AFTER_STEP, resumed_line
    assert not _checkpoints(), "the checkpoints of an ok run are deleted"
    resumed_runs = pd.read_csv(_result_dir(resumed)/"tables/runs.csv")

    fresh = run_experiment("compression_consistency", "smoke", dict(PARAMS), registry=registry, force=True, publish=False, cell_timeout=600)
    assert fresh["status"] == "ok", fresh["error"]
    assert "fit: resumed" not in (_result_dir(fresh)/"log.txt").read_text()
    fresh_runs = pd.read_csv(_result_dir(fresh)/"tables/runs.csv")
    assert resumed["metrics"] == fresh["metrics"]
    assert resumed_runs.final_loss.tolist() == fresh_runs.final_loss.tolist()
