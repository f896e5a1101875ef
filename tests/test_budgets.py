"""`make reproduce` (every experiment's `cpu` profile, one after another) fits in 30 minutes on a 2-core machine.

Each `cpu` profile declares the wall time it is sized for (`budget_s`, from an empty cache). The published `cpu` records
are the measurement: `make reproduce` writes them with their wall time, so a profile whose parameters changed since its
published run fails here until it is re-run and re-published, and a run that took much longer than its budget fails too.
"""
import json

import pytest

from factlab.workbook.registry import load_registry
from factlab.workbook.runs.plan import profile_params

from conftest import ROOT

REGISTRY = load_registry()
TOTAL_S = 30 * 60     # the limit for `make reproduce`, all experiments
SLACK = 1.25          # a run may exceed its budget by this factor (machine noise) before it fails


def test_every_cpu_profile_has_a_budget_and_they_fit():
    budgets = {e: exp["profiles"]["cpu"]["budget_s"] for e, exp in REGISTRY.items() if "cpu" in exp["profiles"]}
    assert set(budgets) == set(REGISTRY), f"experiments without a cpu profile: {set(REGISTRY) - set(budgets)}"
    unset = [e for e, b in budgets.items() if b is None]
    assert not unset, f"cpu profiles without `budget_s`: {unset}"
    assert sum(budgets.values()) <= TOTAL_S, f"cpu budgets sum to {sum(budgets.values())} s > {TOTAL_S} s: {budgets}"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_published_cpu_run_is_current_and_within_budget(name):
    path = ROOT/"reports"/name/"cpu"/"record.json"
    if not path.exists(): pytest.skip(f"{name}: no published cpu run yet")
    record, exp = json.loads(path.read_text()), REGISTRY[name]
    assert record["params"] == profile_params(exp, "cpu"), \
        f"{name}: the cpu profile changed since its published run: re-run `factlab run {name} --profile cpu` and publish it"
    budget = exp["profiles"]["cpu"]["budget_s"]
    assert record["duration_s"] <= SLACK * budget, \
        f"{name}: the published cpu run took {record['duration_s']:.0f} s, more than {SLACK} x its budget of {budget} s"
